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
from dataclasses import dataclass
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


@dataclass
class Rendered:
    """A whole view, and where its last block starts (so an amendment of that block can replace it)."""

    text: str
    last_offset: int  # byte offset of the last timeline block
    last_entry: int | None  # the entry number when the last block is an entry


def _read_cache(project: Project, milestone_id: str) -> dict[str, Any] | None:
    try:
        cache = json.loads(_cache_path(project, milestone_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cache if isinstance(cache, dict) and {"ledger_size", "md_size", "last_offset"} <= cache.keys() else None


def _write_cache(project: Project, milestone_id: str, ledger_size: int, md_size: int, last_offset: int,
                 last_entry: int | None) -> None:
    path = _cache_path(project, milestone_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"ledger_size": ledger_size, "md_size": md_size, "last_offset": last_offset,
                               "last_entry": last_entry}), encoding="utf-8")
    os.replace(tmp, path)


def _fresh(project: Project, milestone_id: str, writer: ledger.Writer, target: Path) -> dict[str, Any] | None:
    """The cache, if it proves the file on disk is the render of the ledger as it was before this append."""
    cache = _read_cache(project, milestone_id)
    try:
        md_size = target.stat().st_size
    except OSError:
        return None
    if cache is None or cache["ledger_size"] != writer.size_before or cache["md_size"] != md_size:
        return None
    return cache


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
    return render.environment(
        project.root / project.settings.templates_dir,
        project.state_dir / "jinja-cache",
        timeout_s=project.settings.render_timeout_s,
    )


def full_text(project: Project, milestone: Milestone) -> Rendered:
    """The whole view of a folded milestone; a broken template raises before anything is written."""
    parts = render.render_toolcalls_parts(environment(project), milestone)
    text = "".join(parts)
    if not milestone.timeline:
        return Rendered(text, len(text.encode("utf-8")), None)
    last = milestone.timeline[-1]
    number = milestone.entries[last.index].number if last.type == "entry" else None
    return Rendered(text, len(text.encode("utf-8")) - len(parts[-1].encode("utf-8")), number)


def blocks_text(project: Project, blocks: list[tuple[str, Any]]) -> str:
    """New timeline blocks, rendered before their events are appended (so a template error writes nothing)."""
    env = environment(project)
    return "".join(render.render_block(env, kind, obj) for kind, obj in blocks)


def write_full(project: Project, milestone_id: str, writer: ledger.Writer, view: Rendered) -> Path:
    target = toolcalls_path(writer.path, milestone_id)
    write_atomic(target, view.text)
    _write_cache(project, milestone_id, writer.size, len(view.text.encode("utf-8")), view.last_offset, view.last_entry)
    return target


def render_full(project: Project, milestone_id: str, ledger_path: Path, held: ledger.Writer | None = None) -> Path:
    """Re-renders `M44_toolcalls.md` from the whole ledger and records the cache.

    `held` is the writer when the caller holds the ledger lock (read through it, not around it).
    """
    if held is None:
        with ledger.writer(ledger_path) as w:  # a consistent snapshot, and no writer racing the view
            return render_full(project, milestone_id, ledger_path, w)
    view = full_text(project, ledger.fold(ledger_path, held.events()))
    return write_full(project, milestone_id, held, view)


def _lagging(project: Project, milestone_id: str, target: Path, exc: Exception) -> None:
    """A failure after the append never undoes it: the event is recorded, the view lags until the next write."""
    try:
        _cache_path(project, milestone_id).unlink(missing_ok=True)
    except OSError:
        pass
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    log.warning("%s was not re-rendered (the event is recorded): %s", project.relative(target), reason)


def after_append(
    project: Project,
    milestone_id: str,
    writer: ledger.Writer,
    text: str | None,
    *,
    last_entry: int | None = None,
    full_view: Rendered | None = None,
) -> None:
    """Brings the view up to date after `writer` appended, while it still holds the lock.

    `text` is the one block the append adds to the view, rendered before the append (`last_entry`
    names it when it is an entry), or "" when the view does not change (a run event); `None` means
    a full render, or writing `full_view` when the caller already rendered the whole new view.
    """
    target = toolcalls_path(writer.path, milestone_id)
    try:
        if full_view is not None:
            write_full(project, milestone_id, writer, full_view)
            return
        cache = _fresh(project, milestone_id, writer, target)
        if text is None or cache is None:
            render_full(project, milestone_id, writer.path, writer)
            return
        if not text:  # nothing visible changed
            _write_cache(
                project, milestone_id, writer.size, cache["md_size"], cache["last_offset"], cache.get("last_entry")
            )
            return
        data = text.encode("utf-8")
        with open(target, "ab") as handle:
            handle.write(data)
        _write_cache(project, milestone_id, writer.size, cache["md_size"] + len(data), cache["md_size"], last_entry)
    except (TunixError, OSError) as exc:
        _lagging(project, milestone_id, target, exc)


def replace_last_entry(project: Project, milestone_id: str, writer: ledger.Writer, text: str, number: int) -> bool:
    """After amending entry `number`, the view's last block, swaps that block for `text`.

    Returns False (and changes nothing) unless the cache proves the file ends with that entry's
    block exactly where it says; the caller then renders in full.
    """
    target = toolcalls_path(writer.path, milestone_id)
    cache = _fresh(project, milestone_id, writer, target)
    if cache is None or cache.get("last_entry") != number:
        return False
    try:
        data = text.encode("utf-8")
        with open(target, "r+b") as handle:
            handle.truncate(cache["last_offset"])
            handle.seek(cache["last_offset"])
            handle.write(data)
        _write_cache(project, milestone_id, writer.size, cache["last_offset"] + len(data), cache["last_offset"], number)
    except OSError as exc:
        _lagging(project, milestone_id, target, exc)
    return True
