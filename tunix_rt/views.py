"""Writes the rendered tool-calls view after each ledger write, incrementally when it safely can.

A full render re-reads and re-validates the whole ledger; on a 10,000-entry ledger that is the
slowest part of `log entry`. So after an append we only append the new blocks to the Markdown
file, provided a small per-clone cache (in `.git/tunix-rt/render/`) proves the file on disk is
exactly the render of the ledger as it was before the append (same ledger size, same Markdown
size). Any doubt (a missing cache, a killed writer, a hand edit, an amended entry) means a full
render. A full render and the incremental one give the same bytes because a document is the
header followed by independently rendered blocks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import logging

from tunix_rt import ledger, render
from tunix_rt.errors import TunixError
from tunix_rt.models import Milestone
from tunix_rt.project import Project

log = logging.getLogger("tunix_rt")


def toolcalls_path(ledger_path: Path, milestone_id: str) -> Path:
    return ledger_path.parent / f"{milestone_id}_toolcalls.md"


def _cache_path(project: Project, milestone_id: str) -> Path:
    return project.state_dir / "render" / f"{milestone_id}.json"


def _read_cache(project: Project, milestone_id: str) -> dict[str, int] | None:
    try:
        return json.loads(_cache_path(project, milestone_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_cache(project: Project, milestone_id: str, ledger_size: int, md_size: int) -> None:
    path = _cache_path(project, milestone_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"ledger_size": ledger_size, "md_size": md_size}), encoding="utf-8")
    os.replace(tmp, path)


def write_atomic(path: Path, text: str) -> None:
    """Whole-file writes go through a temporary file and a rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def environment(project: Project):
    return render.environment(project.root / project.settings.templates_dir, project.state_dir / "jinja-cache")


def full_text(project: Project, milestone: Milestone) -> str:
    """The whole view of a folded milestone; a broken template raises before anything is written."""
    return render.render_toolcalls(environment(project), milestone)


def blocks_text(project: Project, blocks: list[tuple[str, Any]]) -> str:
    """New timeline blocks, rendered before their events are appended (so a template error writes nothing)."""
    env = environment(project)
    return "".join(render.render_block(env, kind, obj) for kind, obj in blocks)


def write_full(project: Project, milestone_id: str, writer: ledger.Writer, text: str) -> Path:
    target = toolcalls_path(writer.path, milestone_id)
    write_atomic(target, text)
    _write_cache(project, milestone_id, writer.size, len(text.encode("utf-8")))
    return target


def render_full(project: Project, milestone_id: str, ledger_path: Path, held: ledger.Writer | None = None) -> Path:
    """Re-renders `M44_toolcalls.md` from the whole ledger and records the cache.

    `held` is the writer when the caller holds the ledger lock (read through it, not around it).
    """
    if held is None:
        with ledger.writer(ledger_path) as w:  # a consistent snapshot, and no writer racing the view
            return render_full(project, milestone_id, ledger_path, w)
    text = full_text(project, ledger.fold(ledger_path, held.events()))
    return write_full(project, milestone_id, held, text)


def after_append(
    project: Project, milestone_id: str, writer: ledger.Writer, text: str | None, *, full_view: str | None = None
) -> None:
    """Brings the view up to date after `writer` appended, while it still holds the lock.

    `text` is what the append adds to the view, rendered before the append ("" when the view does
    not change, as for a run event); `None` means a full render, or writing `full_view` when the
    caller already rendered the whole new view. A failure here never undoes the
    append: the event is recorded, the view lags (with a warning) until the next write or `render`.
    """
    target = toolcalls_path(writer.path, milestone_id)
    try:
        if full_view is not None:
            write_full(project, milestone_id, writer, full_view)
            return
        cache = _read_cache(project, milestone_id)
        try:
            md_size = target.stat().st_size
        except OSError:
            md_size = -1
        fresh = cache is not None and cache["ledger_size"] == writer.size_before and cache["md_size"] == md_size
        if text is None or not fresh:
            render_full(project, milestone_id, writer.path, writer)
            return
        if text:
            data = text.encode("utf-8")
            with open(target, "ab") as handle:
                handle.write(data)
            md_size += len(data)
        _write_cache(project, milestone_id, writer.size, md_size)
    except (TunixError, OSError) as exc:
        try:
            _cache_path(project, milestone_id).unlink(missing_ok=True)
        except OSError:
            pass
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.warning("%s was not re-rendered (the event is recorded): %s", project.relative(target), reason)
