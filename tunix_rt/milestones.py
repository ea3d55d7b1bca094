"""Use cases on milestones: init, start, log, checkpoint, session, import, show, render.

Each function validates everything first, then writes; it returns models and prints nothing.
Warnings (a redacted secret, a kept raw block) go to the `tunix_rt` logger, which the CLI prints.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tunix_rt import clock, ledger, views
from tunix_rt.errors import TunixError
from tunix_rt.ids import canonical_milestone
from tunix_rt.models import (
    ENTRY_FIELD_LABELS,
    STATUS_DISPLAY,
    STATUSES,
    Baseline,
    Block,
    BlockAdded,
    Checkpoint,
    CheckpointAdded,
    Entry,
    EntryAdded,
    EntryUpdated,
    Milestone,
    MilestoneStarted,
    Run,
    RunRecorded,
    Section,
    Session,
    SessionStarted,
    Source,
)
from tunix_rt.project import Project
from tunix_rt.redact import redact

log = logging.getLogger("tunix_rt")

SCAFFOLDED_DOCS = ("plan", "questions", "answers")

# --- input cleaning ---------------------------------------------------------------------------


def clean(text: str, what: str) -> str:
    """Strips, normalises newlines and redacts secrets, saying so on stderr."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 on the command line
        raise TunixError(f"{what} is not valid UTF-8 text") from None
    value, kinds = redact(text.replace("\r\n", "\n").strip())
    if kinds:
        log.warning("redacted %s from %s", ", ".join(sorted(set(kinds))), what)
    return value


def required(text: str | None, what: str, *, one_line: bool = False) -> str:
    """A cleaned value that must not be empty; `one_line` folds line breaks into spaces for values
    rendered inside a heading or a field line (a title, a tool), where Markdown cannot keep them."""
    value = clean(text or "", what)
    if one_line:
        value = " ".join(value.split())
    if not value:
        raise TunixError(f"{what} must not be empty")
    return value


def parse_status(text: str) -> str:
    """`completed`, `COMPLETED`, `in progress`, `In_Progress` -> the canonical status; else exit 2."""
    key = re.sub(r"[\s_]+", "-", text.strip().lower())
    if key not in STATUSES:
        raise TunixError(f"unknown status {text!r}: use one of {', '.join(STATUSES)}")
    return key


def parse_section(spec: str) -> tuple[str, str]:
    """`NAME=TEXT` -> (NAME, TEXT); the name must not be empty, the text may hold '='."""
    name, sep, text = spec.partition("=")
    if not sep:
        raise TunixError(f"--section {spec!r} is not NAME=TEXT")
    if not name.strip():
        raise TunixError(f"--section {spec!r} has an empty NAME")
    if not text.strip():
        raise TunixError(f"--section {spec!r} has an empty TEXT")
    return name.strip(), text


# Sections the real logs write as numbered lists (attempts are counted: "the four JAX attempts").
ORDERED_SECTIONS = frozenset({"attempts", "steps", "commands"})


def build_sections(pairs: Iterable[tuple[str, str]]) -> list[Section]:
    """Each (name, text) pair adds one item to the section of that name, created on first use."""
    sections: dict[str, Section] = {}
    for name, text in pairs:
        name = " ".join(clean(name, f"section name {name!r}").split())
        if "*" in name or name.lower() in ENTRY_FIELD_LABELS:
            raise TunixError(
                f"section name {name!r} is not allowed: no '*', and not a field label "
                "(Timestamp, Tool, Purpose, Files, Status, CHECKPOINT...)"
            )
        item = required(text, f"section {name}")
        ordered = name.lower() in ORDERED_SECTIONS
        sections.setdefault(name, Section(name=name, ordered=ordered)).items.append(item)
    return list(sections.values())


def clean_file(project: Project, value: str) -> str:
    """A path the user gave, stored relative to the repository with '/' when it is inside it."""
    value = clean(value, "a file").replace("\\", "/")
    if not value:
        raise TunixError("--file must not be empty")
    path = Path(value)
    if path.is_absolute():
        try:
            return path.resolve().relative_to(project.root).as_posix()
        except ValueError:
            return value
    return value[2:] if value.startswith("./") else value


# --- locating -----------------------------------------------------------------------------------


def _ledger_path(project: Project, milestone: str | None) -> tuple[str, Path]:
    mid = project.resolve_milestone(milestone)
    return mid, project.ledger(mid)


def _refuse_closed(mid: str, tail: ledger.Tail) -> None:
    if tail.closed:
        raise TunixError(f"milestone {mid} is closed; start a new milestone for more work")


def _latest_phase(project: Project) -> int:
    """The phase of the most recently numbered milestone, read from its ledger's first line."""
    ledgers = project.all_ledgers()
    if not ledgers:
        return 1
    with open(ledgers[-1][1], "rb") as handle:
        first = handle.readline()
    try:
        event = ledger.parse_line(ledgers[-1][1], 1, first)
    except TunixError:
        return 1
    return getattr(event, "phase", 1)


def _refuse_existing(project: Project, mid: str) -> None:
    existing = project.find_ledger(mid)
    if existing is not None:
        raise TunixError(f"milestone {mid} already exists ({project.relative(existing)})")
    from tunix_rt import vcs

    repo = vcs.open_repo(project.root)
    if vcs.head_sha(repo) is None:
        return
    here = vcs.current_branch(repo)
    for branch in vcs.local_branches(repo):
        if branch == here:
            continue
        for path in vcs.paths_on_branch(repo, branch, project.settings.milestones_dir):
            if path.endswith(f"/{mid}.ledger.jsonl"):
                raise TunixError(f"milestone {mid} already exists on branch {branch} ({path})")


def slug(title: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return text[:48].rstrip("-") or "work"


# --- start / import -----------------------------------------------------------------------------


def _take_baseline(project: Project, folder: Path, mid: str) -> tuple[Baseline, str]:
    """The repository state now; returns the baseline and the `git diff HEAD` patch text."""
    from tunix_rt import environment, vcs

    state = vcs.repo_state(vcs.open_repo(project.root))
    patch_path = folder / f"{mid}_baseline.patch"
    baseline = Baseline(
        sha=state.sha,
        branch=state.branch,
        dirty_files=state.dirty_files,
        diff_patch=project.relative(patch_path) if state.diff_patch else None,
        time=clock.stamp(),
        environment=environment.snapshot(),
    )
    return baseline, state.diff_patch


def _scaffold_texts(project: Project, mid: str, title: str, folder: Path) -> dict[Path, str]:
    """The plan/questions/answers documents that do not exist yet, rendered (not written)."""
    from tunix_rt import render

    env = views.environment(project)
    texts = {}
    for kind in SCAFFOLDED_DOCS:
        target = folder / f"{mid}_{kind}.md"
        if not target.exists():
            texts[target] = render.normalise(render.render(env, f"{kind}.md.j2", milestone_id=mid, title=title))
    return texts


def _create(
    project: Project,
    mid: str,
    title: str,
    phase: int,
    events: list[Any],
    *,
    source: Source,
    imported_from: str | None = None,
) -> Milestone:
    """Writes a new milestone: baseline patch, ledger, scaffolded documents, view; makes it current.

    Everything that can fail on bad input (a folder outside the repository, a broken template) is
    done before the first byte is written.
    """
    folder = project.phase_dir(phase)
    project.check_inside(folder)
    baseline, patch = _take_baseline(project, folder, mid)
    started = MilestoneStarted(
        time=baseline.time,
        milestone=mid,
        title=title,
        phase=phase,
        baseline=baseline,
        source=source,
        imported_from=imported_from,
    )
    path = folder / f"{mid}.ledger.jsonl"
    state = ledger.fold(path, [started, *events])
    view = views.full_text(project, state)
    documents = _scaffold_texts(project, mid, title, folder)
    folder.mkdir(parents=True, exist_ok=True)
    if patch:
        patch_text, kinds = redact(patch)
        if kinds:
            log.warning("redacted %s from the baseline patch", ", ".join(sorted(set(kinds))))
        (folder / f"{mid}_baseline.patch").write_bytes(patch_text.encode("utf-8"))
    # Creating the ledger is what claims the id: of two racing `start`s exactly one wins.
    created = ledger.create(path, [started, *events])
    with ledger.writer(path) as w:
        if w.size == created:
            views.after_append(project, mid, w, None, full_view=view)
        else:  # someone appended between the claim and this lock: render what is there now
            views.after_append(project, mid, w, None)
    for target, text in documents.items():
        if not target.exists():
            views.write_atomic(target, text)
    project.set_current_milestone(mid)
    return state


def start(project: Project, milestone_id: str, title: str, *, phase: int | None = None, branch: bool = False) -> Milestone:
    """Starts a milestone: refuses an existing id, records the baseline, scaffolds, makes it current."""
    mid = canonical_milestone(milestone_id)
    title = required(title, "--title", one_line=True)
    if phase is not None and phase < 0:
        raise TunixError(f"--phase must be 0 or more, not {phase}")
    _refuse_existing(project, mid)
    phase = phase if phase is not None else _latest_phase(project)
    if branch:
        from tunix_rt import vcs

        vcs.create_branch(vcs.open_repo(project.root), f"milestone/{mid}-{slug(title)}")
    now = clock.stamp()
    session = SessionStarted(time=now, session=Session(number=1, date=now[:10], started=now))
    return _create(project, mid, title, phase, [session], source="cli")


def _redact_item(item: Any, what: str) -> Any:
    """Redacts every string inside an imported model."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return clean(value, what) if value.strip() else value
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return type(item).model_validate(walk(item.model_dump()))


def import_log(
    project: Project, source: Path, *, milestone: str | None = None, phase: int | None = None
) -> tuple[Milestone, list[str]]:
    """Adopts a hand-written tool-calls log: a new open milestone whose ledger holds its entries.

    Returns the milestone and the lines describing what was kept verbatim as raw blocks. If the
    view's path already holds a hand-written file (importing in place), it is kept beside it as
    `M43_toolcalls.imported.md` rather than overwritten.
    """
    limit = int(project.settings.max_file_mb * 1024 * 1024)
    try:
        size = source.stat().st_size
        if size > limit:  # close would refuse to commit the ledger and view it turns into
            raise TunixError(
                f"{source} is {size / 1024 / 1024:.1f} MB, over max_file_mb ({project.settings.max_file_mb:g}); "
                "a tool-calls log that large is not one"
            )
        data = source.read_bytes()
    except OSError as exc:
        raise TunixError(f"cannot read {source}: {exc.strerror}") from exc
    if milestone:
        _refuse_existing(project, canonical_milestone(milestone))
    from tunix_rt import legacy

    parsed = legacy.parse(legacy.decode(data, str(source)))
    given = milestone or parsed.milestone
    if not given:
        raise TunixError(f"{source}: no milestone id in its title; pass --milestone M43")
    mid = canonical_milestone(given)
    if phase is not None and phase < 0:
        raise TunixError(f"--phase must be 0 or more, not {phase}")
    if not milestone:  # a given id was checked before parsing
        _refuse_existing(project, mid)
    phase = phase if phase is not None else _latest_phase(project)
    now = clock.stamp()
    events: list[Any] = []
    for item in parsed.items:
        item = _redact_item(item, f"imported {type(item).__name__.lower()}")
        if isinstance(item, Entry):
            events.append(EntryAdded(time=now, entry=item))
        elif isinstance(item, Session):
            events.append(SessionStarted(time=now, session=item))
        elif isinstance(item, Checkpoint):
            events.append(CheckpointAdded(time=now, checkpoint=item))
        elif isinstance(item, Block):
            events.append(BlockAdded(time=now, block=item))
    view = project.phase_dir(phase) / f"{mid}_toolcalls.md"
    if view.exists():
        kept = view.with_name(f"{mid}_toolcalls.imported.md")
        if kept.exists():
            raise TunixError(f"{project.relative(kept)} already exists; move it away first")
        view.rename(kept)
        log.warning("kept the hand-written log as %s", project.relative(kept))
    try:
        where = project.relative(source.resolve())
        imported_from = where if not where.startswith("..") else source.name
    except ValueError:
        imported_from = source.name
    state = _create(
        project,
        mid,
        clean(parsed.title, "the title"),
        phase,
        events,
        source="import",
        imported_from=imported_from,
    )
    for line in parsed.kept_raw:
        log.warning("kept verbatim: %s", line)
    return state, list(parsed.kept_raw)


# --- logging --------------------------------------------------------------------------------------


def add_entry(
    project: Project,
    milestone: str | None,
    *,
    title: str,
    tools: Sequence[str],
    purpose: str,
    files: Sequence[str] = (),
    status: str | None = "in-progress",
    status_text: str | None = None,
    sections: Iterable[tuple[str, str]] = (),
    checkpoint: str | None = None,
    source: Source = "cli",
    agent_session_id: str | None = None,
    tool_use_id: str | None = None,
) -> Entry:
    """Appends an entry with the next number (allocated under the ledger lock) and renders it."""
    title = required(title, "--title", one_line=True)
    purpose = required(purpose, "--purpose")
    tool_list = [required(tool, "--tool", one_line=True) for tool in tools]
    if not tool_list:
        raise TunixError("at least one --tool is required")
    file_list = [clean_file(project, f) for f in files]
    canonical = parse_status(status) if status is not None else None
    built = build_sections(sections)
    point = required(checkpoint, "--checkpoint") if checkpoint is not None else None
    text = " ".join(clean(status_text, "the status text").split()) if status_text else ""
    mid, path = _ledger_path(project, milestone)
    with ledger.writer(path) as w:
        tail = w.tail()
        _refuse_closed(mid, tail)
        number = tail.last_number + 1
        entry = Entry(
            number=number,
            label=str(number),
            title=title,
            timestamp=clock.stamp(),
            tools=tool_list,
            purpose=purpose,
            files=file_list,
            status=canonical,  # type: ignore[arg-type]
            status_text=text,
            sections=built,
            checkpoint=point,
            source=source,
            agent_session_id=agent_session_id,
            tool_use_id=tool_use_id,
        )
        text = views.blocks_text(project, [("entry", entry)])
        w.append(EntryAdded(time=entry.timestamp, entry=entry))
        views.after_append(project, mid, w, text, last_entry=entry.number)
    return entry


def _load_held(path: Path, w: ledger.Writer) -> Milestone:
    return ledger.fold(path, w.events())


def update_entry(
    project: Project,
    milestone: str | None,
    number: int | None,
    *,
    status: str | None = None,
    status_text: str | None = None,
    sections: Iterable[tuple[str, str]] = (),
    checkpoint: str | None = None,
    source: Source = "cli",
) -> Entry:
    """Amends entry `number` (None: the latest entry) with a new event; nothing is rewritten."""
    canonical = parse_status(status) if status is not None else None
    built = build_sections(sections)
    point = required(checkpoint, "--checkpoint") if checkpoint is not None else None
    text = " ".join(clean(status_text, "the status text").split()) if status_text else None
    if canonical is None and text is None and not built and point is None:
        raise TunixError("nothing to update: give --status, --section or --checkpoint")
    mid, path = _ledger_path(project, milestone)

    def amendment(target: int) -> EntryUpdated:
        return EntryUpdated(
            time=clock.stamp(),
            number=target,
            status=canonical,  # type: ignore[arg-type]
            status_text=text,
            sections=built,
            checkpoint=point,
            source=source,
        )

    with ledger.writer(path) as w:
        # Fast path: the entry is the view's last block (the usual case: logging as you go, a hook's
        # post-call event, `log checkpoint`), folded from the end of the file and swapped in place.
        last = w.last_block_entry(number)
        if last is not None:
            event = amendment(last.number)
            ledger.apply_update(last, event)
            block = views.blocks_text(project, [("entry", last)])  # a broken template stops here
            w.append(event)
            if not views.replace_last_entry(project, mid, w, block, last.number):
                views.after_append(project, mid, w, None)
            return last
        state = _load_held(path, w)
        if state.status == "closed":
            raise TunixError(f"milestone {mid} is closed; start a new milestone for more work")
        if number is None:
            if not state.entries:
                raise TunixError(f"milestone {mid} has no entry yet; use --standalone for a checkpoint section")
            number = state.entries[-1].number
        positions = [i for i, entry in enumerate(state.entries) if entry.number == number]
        if not positions:
            raise TunixError(f"milestone {mid} has no entry {number}")
        event = amendment(number)
        updated = ledger.fold(path, [*w.events(), event])
        view = views.full_text(project, updated)  # a broken template stops here, before the append
        w.append(event)
        views.after_append(project, mid, w, None, full_view=view)
        return updated.entries[positions[-1]]


def add_checkpoint(
    project: Project,
    milestone: str | None,
    text: str,
    *,
    standalone: bool = False,
    status: str | None = None,
) -> Entry | Checkpoint:
    """The checkpoint line of the latest entry, or (standalone) a `## CHECKPOINT: text` section."""
    text = required(text, "the checkpoint text", one_line=standalone)  # a standalone one is a heading
    if status is not None and not standalone:
        raise TunixError("--status applies only to a --standalone checkpoint")
    canonical = parse_status(status) if status is not None else None
    mid, path = _ledger_path(project, milestone)
    if not standalone:
        return update_entry(project, mid, _checkpoint_target(path), checkpoint=text)
    with ledger.writer(path) as w:
        tail = w.tail()
        _refuse_closed(mid, tail)
        point = Checkpoint(
            title=text,
            status=canonical,  # type: ignore[arg-type]
            after_entry=tail.last_number or None,
        )
        text = views.blocks_text(project, [("checkpoint", point)])
        w.append(CheckpointAdded(time=clock.stamp(), checkpoint=point))
        views.after_append(project, mid, w, text)
    return point


def _checkpoint_target(path: Path) -> int | None:
    """The latest entry that is not an agent hook's record of a `milestone ...` command: a checkpoint
    describes the work, not the command that logs it (None: the latest entry, or none at all)."""
    import json

    from tunix_rt.agents.drafts import is_milestone_call

    with ledger.writer(path) as w:
        for line in w.lines_backwards():
            if b'"kind":"entry_added"' not in line:
                continue
            entry = json.loads(line)["entry"]
            _, _, command = str(entry.get("title", "")).partition(": ")
            if entry.get("source") == "hook" and is_milestone_call(command):
                continue
            return int(entry["number"])
    return None


def start_session(project: Project, milestone: str | None, *, recovered: str | None = None) -> Session:
    """Opens a new session heading (after a restart, or to mark a recovered context)."""
    note = required(recovered, "--recovered") if recovered is not None else None
    mid, path = _ledger_path(project, milestone)
    with ledger.writer(path) as w:
        state = _load_held(path, w)
        if state.status == "closed":
            raise TunixError(f"milestone {mid} is closed; start a new milestone for more work")
        now = clock.stamp()
        session = Session(number=len(state.sessions) + 1, date=now[:10], started=now, recovered=note)
        text = views.blocks_text(project, [("session", session)])
        w.append(SessionStarted(time=now, session=session))
        views.after_append(project, mid, w, text)
    return session


def record_run(project: Project, milestone: str | None, run: Run) -> None:
    """Links a run's evidence folder into the ledger (a later record of the same id supersedes)."""
    run = _redact_item(run, f"run {run.id}")  # plugin metrics are text from outside, like any input
    mid, path = _ledger_path(project, milestone)
    with ledger.writer(path) as w:
        _refuse_closed(mid, w.tail())
        w.append(RunRecorded(time=clock.stamp(), run=run))
        views.after_append(project, mid, w, "")


# --- reading --------------------------------------------------------------------------------------


def load(project: Project, milestone: str | None) -> Milestone:
    mid, path = _ledger_path(project, milestone)
    return ledger.load(path)


def show(project: Project, milestone: str | None) -> Milestone:
    """The folded milestone, with the closing commit found through its `Milestone:` trailer."""
    state = load(project, milestone)
    if state.status == "closed":
        from tunix_rt import vcs

        state.commit = vcs.trailer_commit(vcs.open_repo(project.root), state.id)
    return state


def list_all(project: Project) -> list[Milestone]:
    return [ledger.load(path) for _, path in project.all_ledgers()]


def render_views(project: Project, milestone: str | None = None) -> list[Path]:
    """Re-renders every tool-calls view from its ledger (or just one milestone's)."""
    targets = [(canonical_milestone(milestone), project.ledger(canonical_milestone(milestone)))] if milestone else project.all_ledgers()
    written = []
    for mid, path in targets:
        project.check_inside(path)
        written.append(views.render_full(project, mid, path))
    return written


def status_label(entry: Entry) -> str:
    return entry.status_text or (STATUS_DISPLAY[entry.status] if entry.status else "")
