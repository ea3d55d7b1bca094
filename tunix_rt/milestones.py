"""Use cases on milestones: init, start, log, checkpoint, session, import, show, render.

Each function validates everything first, then writes; it returns models and prints nothing.
Warnings (a redacted secret, a kept raw block) go to the `tunix_rt` logger, which the CLI prints.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt import clock, ledger, views
from tunix_rt.errors import TunixError
from tunix_rt.ids import canonical_milestone
from tunix_rt.models import (
    ENTRY_FIELD_LABELS,
    OPEN_STATUSES,
    STATUSES,
    AcceptedThreshold,
    Baseline,
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
    ThresholdAccepted,
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


MAX_PHASE = 9999  # a folder name, `Phase<N>`: 300 digits made the file system refuse it with a traceback


def check_phase(phase: int | None) -> int | None:
    if phase is not None and not 0 <= phase <= MAX_PHASE:
        raise TunixError(f"--phase must be a number from 0 to {MAX_PHASE}")
    return phase
def _refuse_used(project: Project, mid: str) -> None:
    """`start` refuses an id any file under the milestones folder, local branch or commit subject already uses."""
    from tunix_rt import history

    uses = history.id_uses(project)
    use = uses.uses.get(mid)
    if use is not None:
        free = uses.next_free()
        raise TunixError(f"milestone {mid} already exists (used by {use.where}); the next free id is {free}")
    try:
        _refuse_existing(project, mid)  # a ledger on another branch
    except TunixError as exc:
        raise TunixError(f"{exc}; the next free id is {uses.next_free()}") from None


def _default_phase(project: Project) -> int:
    """The phase of the highest milestone found in a `Phase<N>` folder (hand-written or not), else 1."""
    from tunix_rt import history

    return history.default_phase(project)


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
        branch=clean(state.branch, "the branch name") if state.branch is not None else None,
        dirty_files=[clean(name, "a dirty file name") for name in state.dirty_files],
        diff_patch=project.relative(patch_path) if state.diff_patch else None,
        time=clock.stamp(),
        environment=environment.snapshot(),
    )
    return baseline, state.diff_patch


def _max_bytes(project: Project) -> int:
    return int(project.settings.max_file_mb * 1024 * 1024)


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
    before_view: Callable[[], None] | None = None,
) -> Milestone:
    """Writes a new milestone: baseline patch, ledger, scaffolded documents, view; makes it current.

    Everything that can fail on bad input (a folder outside the repository, a broken template) is
    done before the first byte is written. `before_view` runs once the id is claimed, before the
    view is written (import uses it to move a hand-written log out of the view's way).
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
    # Close refuses a file over max_file_mb: refuse now a ledger or view that would be one (D17).
    limit = _max_bytes(project)
    for name, size in (
        (path.name, len(ledger.encode_chained([started, *events], ledger.GENESIS))),
        (f"{mid}_toolcalls.md", len(view.text.encode("utf-8"))),
    ):
        if size > limit:
            raise TunixError(
                f"{name} would be {size / 1024 / 1024:.1f} MB, over max_file_mb = {project.settings.max_file_mb:g}"
            )
    documents = _scaffold_texts(project, mid, title, folder)
    created_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    patch_path = folder / f"{mid}_baseline.patch"
    try:
        if patch:
            patch_text, kinds = redact(patch)
            if kinds:
                log.warning("redacted %s from the baseline patch", ", ".join(sorted(set(kinds))))
            views.write_atomic(patch_path, patch_text)  # a full disk leaves no truncated patch (D23)
        # Creating the ledger is what claims the id: of two racing `start`s exactly one wins.
        created = ledger.create(path, [started, *events])
    except BaseException:
        if patch and not path.exists():
            patch_path.unlink(missing_ok=True)
        if created_folder and not any(folder.iterdir()):
            folder.rmdir()
        raise
    if before_view is not None:
        before_view()
    with ledger.writer(path) as w:
        # someone may have appended between the claim and this lock: then the view catches up after it
        current = w.size == created and views.after_append(project, mid, w, None, full_view=view)
    if not current:
        views.catch_up(project, mid, path)
    for target, text in documents.items():
        if not target.exists():
            views.write_atomic(target, text)
    project.set_current_milestone(mid)
    return state


def start(
    project: Project,
    milestone_id: str,
    title: str,
    *,
    phase: int | None = None,
    branch: bool = False,
    accept: Iterable[str] = (),
) -> Milestone:
    """Starts a milestone: refuses an existing id, records the baseline, scaffolds, makes it current.

    `accept` registers acceptance thresholds before any run exists (see `tunix_rt/thresholds.py`).
    """
    from tunix_rt import thresholds

    mid = canonical_milestone(milestone_id)
    title = required(title, "--title", one_line=True)
    accepted = [thresholds.parse(expression) for expression in accept]
    check_phase(phase)
    _refuse_used(project, mid)
    phase = phase if phase is not None else _default_phase(project)
    now = clock.stamp()
    session = SessionStarted(time=now, session=Session(number=1, date=now[:10], started=now))
    registered = [ThresholdAccepted(time=now, threshold=threshold) for threshold in accepted]
    if not branch:
        return _create(project, mid, title, phase, [session, *registered], source="cli")
    from tunix_rt import vcs

    # A start refused after the branch exists leaves HEAD where it was and no branch behind (D29).
    with vcs.new_branch(vcs.open_repo(project.root), f"milestone/{mid}-{slug(title)}"):
        return _create(project, mid, title, phase, [session, *registered], source="cli")


def accept(project: Project, expression: str, *, milestone: str | None = None) -> AcceptedThreshold:
    """Registers (or changes) an acceptance threshold; one set after a run is recorded as such."""
    from tunix_rt import thresholds

    threshold = thresholds.parse(expression)
    mid, path = _ledger_path(project, milestone)
    with ledger.writer(path) as w:
        state = _load_held(path, w)
        if state.status == "closed":
            raise TunixError(f"milestone {mid} is closed; thresholds judge a milestone before it closes")
        w.append(ThresholdAccepted(time=clock.stamp(), threshold=threshold, runs_before=[r.id for r in state.runs]))
        current = views.after_append(project, mid, w, "")
        state = _load_held(path, w)
    if not current:
        views.catch_up(project, mid, path)
    return next(t for t in state.thresholds if t.threshold.key == threshold.key)


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
    """Adopts a hand-written tool-calls log (adoption.import_log); returns the milestone and the kept-raw lines."""
    from tunix_rt import adoption

    done = adoption.import_log(project, source, milestone=milestone, phase=phase)
    return done.milestone, done.kept_raw


# --- logging --------------------------------------------------------------------------------------


def _append_with_block(project: Project, mid: str, path: Path, kind: str,
                       build: Callable[[ledger.Writer], tuple[Any, Any]]) -> Any:
    """Appends the event `build` makes from the ledger under the lock, its view block rendered outside it.

    The block is rendered from a first look (a broken template stops there, before anything is
    written) and written with the append when nobody appended in between; otherwise the event is
    built again from the ledger as it is now and the view catches up once the lock is released.
    No render runs under the lock: an agent's hook waits for a write, never for a template.
    """
    with ledger.writer(path) as w:
        event, item = build(w)
        seen = w.size
    text: str | None = views.blocks_text(project, [(kind, item)])
    with ledger.writer(path) as w:
        if w.size != seen:
            event, item = build(w)
            text = None
        w.append(event)
        current = views.after_append(project, mid, w, text, last_entry=item.number if kind == "entry" else None)
    if not current:
        views.catch_up(project, mid, path)
    return event


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
    text = required(status_text, "--status-text", one_line=True) if status_text is not None else ""
    # Identifiers come from outside like any text: a token pasted there must not reach the ledger (D16).
    agent_session_id = clean(agent_session_id, "the agent session id") if agent_session_id is not None else None
    tool_use_id = clean(tool_use_id, "the tool-use id") if tool_use_id is not None else None
    mid, path = _ledger_path(project, milestone)

    def build(w: ledger.Writer) -> tuple[EntryAdded, Entry]:
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
        return EntryAdded(time=entry.timestamp, entry=entry), entry

    event = _append_with_block(project, mid, path, "entry", build)
    return event.entry


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
    # Given but blank is refused, not stored: an empty text erased the recorded one (D28).
    text = required(status_text, "--status-text", one_line=True) if status_text is not None else None
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

    # Fast path: the entry is the view's last block (the usual case: logging as you go, a hook's post-call
    # event, `log checkpoint`), folded from the end of the file and swapped in place. Either way the
    # render happens between two short holds of the lock, never under it.
    with ledger.writer(path) as w:
        last = w.last_block_entry(number)
        events = w.events() if last is None else []
        seen = w.size
    if last is not None:
        event = amendment(last.number)
        ledger.apply_update(last, event)
        block = views.blocks_text(project, [("entry", last)])  # a broken template stops here
        with ledger.writer(path) as w:
            unchanged = w.size == seen
            if not unchanged:
                _refuse_closed(mid, w.tail())
            w.append(event)
            current = unchanged and views.replace_last_entry(project, mid, w, block, last.number)
        if not current:
            views.catch_up(project, mid, path)
        return last
    state = ledger.fold(path, events)
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
    updated = ledger.fold(path, [*events, event])
    view = views.full_text(project, updated)  # a broken template stops here, before the append
    with ledger.writer(path) as w:
        unchanged = w.size == seen
        if not unchanged:
            _refuse_closed(mid, w.tail())
        w.append(event)
        current = unchanged and views.after_append(project, mid, w, None, full_view=view)
    if not current:
        views.catch_up(project, mid, path)
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

    def build(w: ledger.Writer) -> tuple[CheckpointAdded, Checkpoint]:
        tail = w.tail()
        _refuse_closed(mid, tail)
        point = Checkpoint(
            title=text,
            status=canonical,  # type: ignore[arg-type]
            after_entry=tail.last_number or None,
        )
        return CheckpointAdded(time=clock.stamp(), checkpoint=point), point

    return _append_with_block(project, mid, path, "checkpoint", build).checkpoint


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

    def build(w: ledger.Writer) -> tuple[SessionStarted, Session]:
        state = _load_held(path, w)
        if state.status == "closed":
            raise TunixError(f"milestone {mid} is closed; start a new milestone for more work")
        now = clock.stamp()
        session = Session(number=len(state.sessions) + 1, date=now[:10], started=now, recovered=note)
        return SessionStarted(time=now, session=session), session

    return _append_with_block(project, mid, path, "session", build).session


def record_run(project: Project, milestone: str | None, run: Run) -> None:
    """Links a run's evidence folder into the ledger (a later record of the same id supersedes)."""
    run = _redact_item(run, f"run {run.id}")  # plugin metrics are text from outside, like any input
    mid, path = _ledger_path(project, milestone)
    with ledger.writer(path) as w:
        _refuse_closed(mid, w.tail())
        w.append(RunRecorded(time=clock.stamp(), run=run))
        current = views.after_append(project, mid, w, "")
    if not current:
        views.catch_up(project, mid, path)


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
        if state.commit is None and state.closed is not None:
            state.commit = state.closed.commit  # hand-run history: the `Mnn:` commit found at import
    return state


def is_history(state: Milestone) -> bool:
    """A milestone closed by hand before the tool was used: imported closed, its hand-written documents its views."""
    return state.closed is not None and bool(state.closed.commit or state.closed.closure)


def list_all(project: Project) -> list[Milestone]:
    return [ledger.load(path) for _, path in project.all_ledgers()]


def render_views(project: Project, milestone: str | None = None) -> list[Path]:
    """Re-renders every tool-calls view from its ledger (or just one milestone's)."""
    targets = (
        [(canonical_milestone(milestone), project.ledger(canonical_milestone(milestone)))]
        if milestone
        else project.all_ledgers()
    )
    written = []
    for mid, path in targets:
        project.check_inside(path)
        with ledger.writer(path) as w:
            history = w.tail().closed and is_history(_load_held(path, w))
        if history:
            log.info("%s is hand-run history: its hand-written log stays as it is", mid)
            continue
        written.append(views.render_full(project, mid, path))
    return written


def open_entries(state: Milestone) -> list[Entry]:
    """The entries still planned or in progress (close refuses while any is left)."""
    return [entry for entry in state.entries if entry.status in OPEN_STATUSES]


def status_label(entry: Entry) -> str:
    return entry.shown_status()


# --- abort ----------------------------------------------------------------------------------------


@dataclass
class Abort:
    """What `abort` removes (or would remove), what it keeps, and what it puts back."""

    milestone: str
    remove: list[Path] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)  # "path (why)"
    restore: tuple[Path, Path] | None = None  # (from, to): a hand-written log an open import moved aside


def _abort_plan(project: Project, mid: str, path: Path) -> Abort:
    from tunix_rt import render, vcs

    state = ledger.load(path)
    if state.status == "closed":
        raise TunixError(f"milestone {mid} is closed; abort removes only a started milestone")
    if state.runs:
        runs = ", ".join(r.id for r in state.runs)
        raise TunixError(f"milestone {mid} has runs ({runs}); abort removes only a milestone with none")
    repo = vcs.open_repo(project.root)
    if vcs.is_tracked(repo, project.relative(path)):
        raise TunixError(f"milestone {mid} has commits: its ledger {project.relative(path)} is committed")
    mentioned = vcs.commits_mentioning(repo, mid)
    if mentioned:
        raise TunixError(f"milestone {mid} has commits: {mentioned[0].sha[:7]} {mentioned[0].subject!r}")
    since = vcs.commits_since(repo, state.baseline.sha)
    if since:
        latest = f"{since[0].sha[:7]} {since[0].subject!r}"
        raise TunixError(f"milestone {mid} has commits: {len(since)} since its baseline, the latest {latest}")
    folder = path.parent
    plan = Abort(milestone=mid, remove=[path])
    for name in (f"{mid}_toolcalls.md", f"{mid}_baseline.patch"):
        if (folder / name).exists():
            plan.remove.append(folder / name)
    env = views.environment(project)
    for kind in SCAFFOLDED_DOCS:
        doc = folder / f"{mid}_{kind}.md"
        if not doc.exists():
            continue
        scaffold = render.normalise(render.render(env, f"{kind}.md.j2", milestone_id=mid, title=state.title))
        if vcs.is_tracked(repo, project.relative(doc)) or doc.read_bytes() != scaffold.encode("utf-8"):
            plan.keep.append(f"{project.relative(doc)} (written by hand since start)")
        else:
            plan.remove.append(doc)
    moved = folder / f"{mid}_toolcalls.imported.md"
    if moved.exists():
        plan.restore = (moved, folder / f"{mid}_toolcalls.md")
    return plan


def abort(project: Project, milestone: str | None, *, dry_run: bool = False) -> Abort:
    """Removes a started milestone that has no runs and no commits: its ledger, view, baseline patch and untouched
    scaffolds. Documents edited since start are kept; a hand-written log an import moved aside is put back."""
    mid, path = _ledger_path(project, milestone)
    project.check_inside(path)
    plan = _abort_plan(project, mid, path)
    if dry_run:
        return plan
    for target in plan.remove:
        target.unlink(missing_ok=True)
    if plan.restore is not None:
        plan.restore[0].rename(plan.restore[1])
    (project.state_dir / "render" / f"{mid}.json").unlink(missing_ok=True)
    if project.current_milestone() == mid:
        project.clear_current_milestone()
    try:
        path.parent.rmdir()  # only when start created it and nothing else lives there
    except OSError:
        pass
    return plan
