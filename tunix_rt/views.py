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

import functools
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
    header_size: int  # bytes of the header, before the first block
    templates: str  # the fingerprint of the templates it was rendered with, taken before the render


@functools.cache
def _packaged_templates() -> str:
    return str(render.default_templates_dir())


def templates_fingerprint(project: Project) -> str:
    """A digest of every template a view is rendered with (packaged and project: name, size, mtime): a
    cache made with other templates proves nothing, so editing a template makes the next write render
    the view in full. Stat only, no reads: it is computed on every append."""
    import hashlib

    digest = hashlib.sha256()
    for folder in (_packaged_templates(), str(project.root / project.settings.templates_dir)):
        for base, dirs, files in sorted(os.walk(folder)):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".j2"):
                    continue
                try:
                    st = os.stat(os.path.join(base, name))
                except OSError:
                    continue
                rel = f"{base[len(folder):]}/{name}"
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        digest.update(b"\1")
    return digest.hexdigest()[:16]


_CACHE_KEYS = {"ledger_size", "md_size", "last_offset", "last_entry", "header_size", "templates"}


def _read_cache(project: Project, milestone_id: str) -> dict[str, Any] | None:
    try:
        cache = json.loads(_cache_path(project, milestone_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cache, dict) or not _CACHE_KEYS <= cache.keys():
        return None
    return cache if cache["templates"] == templates_fingerprint(project) else None


def _write_cache(project: Project, milestone_id: str, cache: dict[str, Any]) -> None:
    """Stores a cache: a whole view's (`_write_view`), or a proven one advanced past an append, which keeps
    its header size and template fingerprint (the blocks were rendered with those templates)."""
    path = _cache_path(project, milestone_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache), encoding="utf-8")
    os.replace(tmp, path)


def _fresh(project: Project, milestone_id: str, writer: ledger.Writer, target: Path) -> dict[str, Any] | None:
    """The cache, if it proves the file on disk is the render of the ledger as it was before this append."""
    cache = _fresh_prefix(project, milestone_id, writer, target)
    return cache if cache is not None and cache["ledger_size"] == writer.size_before else None


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


def with_header(project: Project, ledger_path: Path, ledger_size: int, before: Milestone,
                after: Milestone) -> Rendered | None:
    """The view of `after` (`before`, the fold of the ledger's first `ledger_size` bytes, with a changed
    header only, as when it closes) from the file on disk, when the cache proves that file is the render
    of exactly that ledger with these templates; None otherwise (render it in full). Close uses it: a
    1,000-entry view is then read and spliced instead of rendered again."""
    target = toolcalls_path(ledger_path, before.id)
    cache = _read_cache(project, before.id)
    if cache is None or cache["ledger_size"] != ledger_size:
        return None
    try:
        data = target.read_bytes()
    except OSError:
        return None
    if len(data) != cache["md_size"]:
        return None
    new = render.render_header(environment(project), after).encode("utf-8")
    old = cache["header_size"]
    offset = cache["last_offset"] - old + len(new) if after.timeline else len(data) - old + len(new)
    return Rendered((new + data[old:]).decode("utf-8"), offset, cache["last_entry"], len(new), cache["templates"])


def full_text(project: Project, milestone: Milestone) -> Rendered:
    """The whole view of a folded milestone; a broken template raises before anything is written."""
    templates = templates_fingerprint(project)
    parts = render.render_toolcalls_parts(environment(project), milestone)
    text = "".join(parts)
    size = len(text.encode("utf-8"))
    if not milestone.timeline:
        return Rendered(text, size, None, size, templates)
    last = milestone.timeline[-1]
    number = milestone.entries[last.index].number if last.type == "entry" else None
    return Rendered(text, size - len(parts[-1].encode("utf-8")), number, len(parts[0].encode("utf-8")), templates)


def blocks_text(project: Project, blocks: list[tuple[str, Any]]) -> str:
    """New timeline blocks, rendered before their events are appended (so a template error writes nothing)."""
    env = environment(project)
    return "".join(render.render_block(env, kind, obj) for kind, obj in blocks)


def _write_view(project: Project, milestone_id: str, target: Path, view: Rendered, ledger_size: int) -> None:
    write_atomic(target, view.text)
    _write_cache(project, milestone_id, {
        "ledger_size": ledger_size, "md_size": len(view.text.encode("utf-8")), "last_offset": view.last_offset,
        "last_entry": view.last_entry, "header_size": view.header_size, "templates": view.templates})


def write_full(project: Project, milestone_id: str, writer: ledger.Writer, view: Rendered) -> Path:
    """Writes a view rendered beforehand for the ledger exactly as `writer` holds it."""
    target = toolcalls_path(writer.path, milestone_id)
    _write_view(project, milestone_id, target, view, writer.size)
    return target


# --- catching up, with every render outside the lock ----------------------------------------------

_REFRESH_ROUNDS = 20  # looks at a ledger that other writers keep growing (each round covers what it saw)


@dataclass
class _Seen:
    """The ledger and the view as one short hold of the lock found them."""

    size: int  # the ledger's size
    cache: dict[str, Any] | None  # the cache, when it proves the view is the render of a prefix of the ledger
    data: bytes  # the ledger after that prefix (the whole ledger when there is no proof)


@dataclass
class _Plan:
    """What to write, rendered outside the lock: blocks to append, or a whole view."""

    blocks: bytes | None = None
    last_offset: int = 0
    last_entry: int | None = None
    view: Rendered | None = None


def _look(project: Project, milestone_id: str, w: ledger.Writer, target: Path, full: bool) -> _Seen:
    cache = None if full else _fresh_prefix(project, milestone_id, w, target)
    start = cache["ledger_size"] if cache is not None else 0
    return _Seen(w.size, cache, w.read_from(start))


def _fresh_prefix(project: Project, milestone_id: str, w: ledger.Writer, target: Path) -> dict[str, Any] | None:
    """The cache, if it proves the file on disk is the render of some prefix of the ledger `w` holds."""
    cache = _read_cache(project, milestone_id)
    try:
        md_size = target.stat().st_size
    except OSError:
        return None
    if cache is None or cache["md_size"] != md_size or cache["ledger_size"] > w.size:
        return None
    return cache


def _blocks_since(project: Project, ledger_path: Path, seen: _Seen) -> _Plan | None:
    """The blocks of entries added after the cached prefix (and amended since); None when the change
    reaches back into the view (an older entry amended, a session, a checkpoint): a full render."""
    from tunix_rt.models import Entry, EntryAdded, EntryUpdated, RunRecorded

    assert seen.cache is not None
    added: dict[int, Entry] = {}
    for event in ledger.parse(ledger_path, seen.data, whole=False):
        if isinstance(event, EntryAdded):
            added[event.entry.number] = event.entry.model_copy(deep=True)
        elif isinstance(event, EntryUpdated) and event.number in added:
            ledger.apply_update(added[event.number], event)
        elif not isinstance(event, RunRecorded):
            return None
    if not added:
        return _Plan(b"", seen.cache["last_offset"], seen.cache.get("last_entry"))
    blocks = [blocks_text(project, [("entry", entry)]) for entry in added.values()]
    data = "".join(blocks).encode("utf-8")
    md_size = seen.cache["md_size"]
    return _Plan(data, md_size + len(data) - len(blocks[-1].encode("utf-8")), list(added)[-1])


def _write_plan(project: Project, milestone_id: str, w: ledger.Writer, target: Path, seen: _Seen,
                plan: _Plan) -> bool:
    """Under the lock: writes the plan if the view is still what it was planned against; False if not."""
    now = _fresh_prefix(project, milestone_id, w, target)
    if plan.view is not None:  # a whole view of the prefix seen: never over a view that got further
        if now is not None and now["ledger_size"] > seen.size:
            return False
        _write_view(project, milestone_id, target, plan.view, seen.size)
        return True
    assert seen.cache is not None and plan.blocks is not None
    if now != seen.cache:
        return False
    if plan.blocks:
        with open(target, "ab") as handle:
            handle.write(plan.blocks)
    _write_cache(project, milestone_id, {**seen.cache, "ledger_size": seen.size,
                                         "md_size": seen.cache["md_size"] + len(plan.blocks),
                                         "last_offset": plan.last_offset, "last_entry": plan.last_entry})
    return True


def refresh(project: Project, milestone_id: str, ledger_path: Path, *, full: bool = False) -> str:
    """Brings `M44_toolcalls.md` up to the ledger: "fresh", "caught-up" or "rendered".

    The lock is held only to look and to write, never to render (a user template may take up to
    `render_timeout_s`, and every agent hook would wait on it). Each round renders the ledger as one
    look saw it: the new entries' blocks appended when the cache proves the view renders an earlier
    prefix, the whole view otherwise (`full`: the first round always). The cache records the prefix
    the view renders, so a writer appending meanwhile never makes a round wasted: the next one goes
    on from there. A broken template raises (TunixError) before anything is written.
    """
    target = toolcalls_path(ledger_path, milestone_id)
    outcome = "fresh"
    for _ in range(_REFRESH_ROUNDS):
        with ledger.writer(ledger_path) as w:
            seen = _look(project, milestone_id, w, target, full)
            if seen.cache is not None and seen.cache["ledger_size"] == seen.size:
                return outcome
        plan = _blocks_since(project, ledger_path, seen) if seen.cache is not None else None
        if plan is None and seen.cache is not None:  # the change reaches back into the view: look at it whole
            full = True
            continue
        if plan is None:
            plan = _Plan(view=full_text(project, ledger.fold(ledger_path, ledger.parse(ledger_path, seen.data))))
        with ledger.writer(ledger_path) as w:
            if _write_plan(project, milestone_id, w, target, seen, plan):
                full = False
                outcome = "rendered" if plan.view is not None or outcome == "rendered" else "caught-up"
    log.warning("%s is behind its ledger: other writers kept appending; the next write catches it up",
                project.relative(target))
    return outcome


def render_full(project: Project, milestone_id: str, ledger_path: Path) -> Path:
    """Re-renders the whole view (a changed template, `milestone render`), then catches up."""
    refresh(project, milestone_id, ledger_path, full=True)
    return toolcalls_path(ledger_path, milestone_id)


def catch_up(project: Project, milestone_id: str, ledger_path: Path) -> None:
    """`refresh` after an append that could not write its block: a failure never undoes the append."""
    try:
        refresh(project, milestone_id, ledger_path)
    except (TunixError, OSError) as exc:
        _lagging(project, milestone_id, toolcalls_path(ledger_path, milestone_id), exc)


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
) -> bool:
    """Writes what the append changes in the view while `writer` still holds the lock; renders nothing.

    `text` is the one block the append adds, rendered before the lock (`last_entry` names it when it
    is an entry), or "" when the view does not change (a run event); `full_view` is the whole new view,
    rendered beforehand. Returns False when the cache does not prove the view on disk is the render of
    the ledger just before this append (or `text` is None): the caller calls `catch_up` once the lock
    is released.
    """
    target = toolcalls_path(writer.path, milestone_id)
    try:
        if full_view is not None:
            write_full(project, milestone_id, writer, full_view)
            return True
        cache = _fresh(project, milestone_id, writer, target)
        if text is None or cache is None:
            return False
        if not text:  # nothing visible changed
            _write_cache(project, milestone_id, {**cache, "ledger_size": writer.size})
            return True
        data = text.encode("utf-8")
        with open(target, "ab") as handle:
            handle.write(data)
        _write_cache(project, milestone_id, {**cache, "ledger_size": writer.size,
                                             "md_size": cache["md_size"] + len(data),
                                             "last_offset": cache["md_size"], "last_entry": last_entry})
    except (TunixError, OSError) as exc:
        _lagging(project, milestone_id, target, exc)
    return True


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
        _write_cache(project, milestone_id, {**cache, "ledger_size": writer.size,
                                             "md_size": cache["last_offset"] + len(data), "last_entry": number})
    except OSError as exc:
        _lagging(project, milestone_id, target, exc)
    return True
