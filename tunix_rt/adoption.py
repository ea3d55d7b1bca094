"""History import: turns a repository's hand-written tool-calls logs into ledgers, closed history as closed.

`import FILE` and `import --all` read a log (legacy.parse), decide its milestone, phase and title from where it sits
and what the repository holds (history), and whether it already closed: a closing commit `Mnn: ...` or a closure
block in the log. A closed milestone's ledger is written beside the hand-written log and nothing else is written:
no view (the hand-written log stays the view, byte for byte), no scaffolded document, no baseline patch, so no
tracked file changes. An open milestone becomes a live one, as `start` would make it, its log kept beside the view
as `Mnn_toolcalls.imported.md` when it sat where the view goes.

Each use case plans first (everything that can refuse) and writes after: a refusal writes and renames nothing,
and `--all` refuses as a whole before importing any log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt import clock, history, ledger
from tunix_rt.errors import TunixError
from tunix_rt.ids import canonical_milestone
from tunix_rt.models import (
    Baseline,
    Block,
    BlockAdded,
    Checkpoint,
    CheckpointAdded,
    ClosedInfo,
    Entry,
    EntryAdded,
    Environment,
    Milestone,
    MilestoneClosed,
    MilestoneStarted,
    Session,
    SessionStarted,
)
from tunix_rt.project import Project

log = logging.getLogger("tunix_rt")

_LOG_NAME = re.compile(r"[Mm]([0-9]{1,6})_tool_?calls(?:_log)?\.md", re.I)
_DATE = re.compile(r"\b(20[0-9]{2}-[01][0-9]-[0-3][0-9])\b")


@dataclass
class ImportPlan:
    """Everything an import will write, decided before anything is written."""

    source: Path
    milestone: str
    title: str
    phase: int
    imported_from: str
    events: list[Any]
    kept_raw: list[str]
    closed: ClosedInfo | None = None


@dataclass
class Imported:
    """One imported milestone and the lines describing what was kept verbatim."""

    milestone: Milestone
    kept_raw: list[str]
    source: str


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class ImportAll:
    imported: list[Imported] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


# --- planning ------------------------------------------------------------------------------------------------


def _read(project: Project, source: Path) -> bytes:
    limit = int(project.settings.max_file_mb * 1024 * 1024)
    try:
        size = source.stat().st_size
        if size > limit:  # close would refuse to commit the ledger and view it turns into
            raise TunixError(
                f"{source} is {size / 1024 / 1024:.1f} MB, over max_file_mb ({project.settings.max_file_mb:g}); "
                "a tool-calls log that large is not one"
            )
        from tunix_rt.files import read_bounded

        # Bounded, not by its size: /dev/zero says 0 bytes and never ends (D18).
        return read_bounded(source, limit, "the tool-calls log")
    except OSError as exc:
        raise TunixError(f"cannot read {source}: {exc.strerror}") from exc


def _events(items: list[Any], now: str) -> list[Any]:
    from tunix_rt.milestones import _redact_item

    events: list[Any] = []
    for item in items:
        item = _redact_item(item, f"imported {type(item).__name__.lower()}")
        if isinstance(item, Entry):
            events.append(EntryAdded(time=now, entry=item))
        elif isinstance(item, Session):
            events.append(SessionStarted(time=now, session=item))
        elif isinstance(item, Checkpoint):
            events.append(CheckpointAdded(time=now, checkpoint=item))
        elif isinstance(item, Block):
            events.append(BlockAdded(time=now, block=item))
    return events


def _title(project: Project, seen: history.Scan, mid: str, log_title: str, subject: str | None) -> str:
    """The summary's title, else the plan's, else the log's own, else the closing commit's subject."""
    for kind in ("summary", "plan"):
        doc = history.find_doc(project, mid, kind, seen.files)
        title = history.title_from_doc(doc, mid) if doc is not None else None
        if title:
            return title
    if log_title.strip():
        return log_title.strip()
    return (history.title_from_subject(subject) if subject else None) or ""


def _closed(seen: history.Scan, mid: str, closure: str | None, closure_text: str) -> tuple[ClosedInfo | None, str]:
    """How the milestone closed, and the closing commit's subject ("" when none)."""
    commit = history.closing_commit(seen, mid)
    if commit is None and closure is None:
        return None, ""
    if commit is not None:
        when = commit.time
    else:  # the closure block's own date when it gives one ("**Completion Date:** 2026-01-09")
        dates = _DATE.findall(closure_text)
        when = f"{dates[-1]}T00:00:00Z" if dates else clock.stamp()
    return ClosedInfo(
        time=when, commit=commit.sha if commit else None, closure=closure
    ), commit.subject if commit else ""


def _closure_text(items: list[Any], heading: str | None) -> str:
    if heading is None:
        return ""
    for item in reversed(items):
        if isinstance(item, Block) and item.heading.lstrip("#").strip() == heading:
            return item.text
        if isinstance(item, Checkpoint) and heading.endswith(item.title.strip()):
            return "\n".join([item.text, *(i for s in item.sections for i in s.items)])
    return ""


def plan_import(
    project: Project,
    source: Path,
    *,
    milestone: str | None = None,
    phase: int | None = None,
    seen: history.Scan | None = None,
) -> ImportPlan:
    """Reads and checks one log; raises TunixError (exit 2) on anything that refuses it. Writes nothing.

    `seen` is a history scan shared by several imports (`--all`); one is taken when it is None.
    """
    from tunix_rt import legacy
    from tunix_rt.milestones import _refuse_existing, clean

    if phase is not None:
        from tunix_rt.milestones import check_phase

        check_phase(phase)
    data = _read(project, source)
    if milestone:
        _refuse_existing(project, canonical_milestone(milestone))
    parsed = legacy.enrich(legacy.parse(legacy.decode(data, str(source))))
    name = _LOG_NAME.fullmatch(source.name)
    given = milestone or parsed.milestone or (name.group(1) if name else None)
    if not given:
        raise TunixError(f"{source}: no milestone id in its title or file name; pass --milestone M43")
    mid = canonical_milestone(given if given[:1] in "Mm" else f"M{given}")
    if not milestone:
        _refuse_existing(project, mid)
    seen = seen or history.scan(project)
    if phase is None:
        phase = history.phase_of(project, source)
    if phase is None:
        phase = history.default_phase(project, seen.files)
    heading = legacy.closure(parsed)
    closed, subject = _closed(seen, mid, heading, _closure_text(parsed.items, heading))
    title = clean(_title(project, seen, mid, parsed.title, subject or None), "the title")
    try:
        where = project.relative(source.resolve())
        imported_from = where if not where.startswith("..") else source.name
    except ValueError:
        imported_from = source.name
    return ImportPlan(
        source=source,
        milestone=mid,
        title=" ".join(title.split()),
        phase=phase,
        imported_from=imported_from,
        events=_events(parsed.items, clock.stamp()),
        kept_raw=list(parsed.kept_raw),
        closed=closed,
    )


# --- writing -------------------------------------------------------------------------------------------------


def _write_closed(project: Project, plan: ImportPlan) -> Milestone:
    """Only the ledger, beside the hand-written log: the milestone is history, its documents stay as they are."""
    assert plan.closed is not None
    folder = project.phase_dir(plan.phase)
    project.check_inside(folder)
    now = clock.stamp()
    started = MilestoneStarted(
        time=now,
        milestone=plan.milestone,
        title=plan.title,
        phase=plan.phase,
        # Where and on what the work ran was not recorded: an empty environment, never today's machine.
        baseline=Baseline(
            sha=None, branch=None, time=plan.closed.time, environment=Environment(python="", platform="")
        ),
        source="import",
        imported_from=plan.imported_from,
    )
    events = [started, *plan.events, MilestoneClosed(time=now, closed=plan.closed)]
    path = folder / f"{plan.milestone}.ledger.jsonl"
    state = ledger.fold(path, events)
    folder.mkdir(parents=True, exist_ok=True)
    ledger.create(path, events)
    return state


def _write_open(project: Project, plan: ImportPlan) -> Milestone:
    """A live milestone, as `start` makes one; a hand-written log in the view's place moves aside first."""
    from tunix_rt.milestones import _create

    view = project.phase_dir(plan.phase) / f"{plan.milestone}_toolcalls.md"
    kept = view.with_name(f"{plan.milestone}_toolcalls.imported.md")
    move = view.exists()
    if move and kept.exists():
        raise TunixError(f"{project.relative(kept)} already exists; move it away first")

    def keep_hand_written() -> None:
        if move:
            view.rename(kept)
            log.warning("kept the hand-written log as %s", project.relative(kept))

    return _create(
        project,
        plan.milestone,
        plan.title,
        plan.phase,
        plan.events,
        source="import",
        imported_from=plan.imported_from,
        before_view=keep_hand_written,
    )


def write_import(project: Project, plan: ImportPlan) -> Imported:
    state = _write_closed(project, plan) if plan.closed is not None else _write_open(project, plan)
    for line in plan.kept_raw:
        log.warning("%s: kept verbatim: %s", plan.milestone, line)
    return Imported(milestone=state, kept_raw=plan.kept_raw, source=plan.imported_from)


def import_log(project: Project, source: Path, *, milestone: str | None = None, phase: int | None = None) -> Imported:
    """Adopts one hand-written tool-calls log (see the module notes)."""
    return write_import(project, plan_import(project, source, milestone=milestone, phase=phase))


def find_logs(project: Project, files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """(id, path) of every hand-written tool-calls log under the milestones folder: `Phase<N>` folders first, the
    highest phase first (a milestone moved from Phase1 to Phase3 ended up there), then other folders."""
    found = []
    for mid, path in files:
        if path.is_file() and _LOG_NAME.fullmatch(path.name):
            phase = history.phase_of(project, path)
            found.append((phase is None, -(phase or 0), str(path), mid, path))
    return [(mid, path) for *_, mid, path in sorted(found)]


def import_all(project: Project) -> ImportAll:
    """Adopts every hand-written log under the milestones folder, and every milestone that kept only documents
    in a `Phase<N>` folder and has a closing commit; milestones that already have a ledger are skipped.

    Every log is planned before any is written, so one refused log refuses the whole run with nothing written.
    """
    result = ImportAll()
    seen = history.scan(project)
    plans: list[ImportPlan] = []
    claimed: dict[str, str] = {}  # id -> the log it is imported from in this run
    for mid, path in find_logs(project, seen.files):
        where = project.relative(path)
        if path.stat().st_size == 0:
            result.skipped.append(Skipped(where, "empty placeholder"))
            continue
        if mid in claimed:  # a log copied into two phase folders: the higher phase wins
            result.skipped.append(Skipped(where, f"{mid} is imported from {claimed[mid]}"))
            continue
        if project.find_ledger(mid) is not None:
            result.skipped.append(Skipped(where, f"{mid} already has a ledger"))
            continue
        plans.append(plan_import(project, path, milestone=mid, seen=seen))
        claimed[mid] = where
    logged = {mid for mid, _ in find_logs(project, seen.files)}
    for mid, folder in _documented(project, seen.files):
        if mid in logged or mid in claimed or project.find_ledger(mid) is not None:
            continue
        documented = plan_documents(project, seen, mid, folder)
        if documented is None:
            result.skipped.append(Skipped(project.relative(folder), f"{mid} has no log and no closing commit"))
            continue
        claimed[mid] = documented.imported_from
        plans.append(documented)
    for plan in plans:
        result.imported.append(write_import(project, plan))
    result.imported.sort(key=lambda done: int(done.milestone.id[1:]))
    return result


def _documented(project: Project, files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """(id, folder) of every milestone with documents in a `Phase<N>` folder: its summary's folder when it has one."""
    found: dict[str, Path] = {}
    for mid, path in files:
        if history.phase_of(project, path) is None:
            continue
        if mid not in found or path.name.endswith("_summary.md"):
            found[mid] = path.parent
    return sorted(found.items(), key=lambda item: int(item[0][1:]))


def plan_documents(project: Project, seen: history.Scan, mid: str, folder: Path) -> ImportPlan | None:
    """A milestone that kept documents but no log: imported closed, with no entries, when its closing commit
    exists; None (nothing to adopt) when it does not."""
    from tunix_rt.milestones import clean

    commit = history.closing_commit(seen, mid)
    if commit is None:
        return None
    summary = history.find_doc(project, mid, "summary", seen.files)
    source = summary or folder
    return ImportPlan(
        source=source,
        milestone=mid,
        title=" ".join(clean(_title(project, seen, mid, "", commit.subject), "the title").split()),
        phase=history.phase_of(project, folder) or history.default_phase(project, seen.files),
        imported_from=project.relative(source),
        events=[],
        kept_raw=[],
        closed=ClosedInfo(time=commit.time, commit=commit.sha),
    )
