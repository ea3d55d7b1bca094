"""The schema: every ledger event, the folded milestone state, and the shapes `--json` prints.

One set of pydantic models serves three purposes: a ledger line is validated against `Event`, the
fold of a ledger is a `Milestone`, and templates receive those same objects as their context.
Models defer building their validators until first use so the `log entry` hot path pays only for
the few it touches.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1

Status = Literal["planned", "in-progress", "completed", "failed", "blocked", "skipped"]
OPEN_STATUSES = ("in-progress", "planned")  # an entry in one of these keeps close from closing without --force
STATUSES: tuple[str, ...] = ("planned", "in-progress", "completed", "failed", "blocked", "skipped")
STATUS_DISPLAY: dict[str, str] = {
    "planned": "PLANNED",
    "in-progress": "IN PROGRESS",
    "completed": "✅ COMPLETED",
    "failed": "❌ FAILED",
    "blocked": "BLOCKED",
    "skipped": "SKIPPED",
}



def shown_status(status: Status | None, text: str, *, as_written: bool = False) -> str:
    """The status as the log and the summary show it.

    A failed item always reads `❌ FAILED`, whatever text came with it (`--status failed --status-text "timeout"`
    would otherwise hide the failure from anyone scanning for it). `as_written` keeps an imported item's text:
    the importer read it as failed because of what it says, and the record of hand-run history stays verbatim.
    """
    shown = text or (STATUS_DISPLAY[status] if status else "")
    if status != "failed" or as_written:
        return shown
    if "FAILED" not in shown:
        shown = f"FAILED — {shown}" if shown else "FAILED"
    return shown if "❌" in shown else f"❌ {shown}"


# The bold labels that the Markdown form of an entry reserves for its fields (lower case -> field).
# The importer reads them as fields, so a free section may not be named like one.
ENTRY_FIELD_LABELS: dict[str, str] = {
    "timestamp": "timestamp",
    "time": "timestamp",
    "tool": "tools",
    "tools": "tools",
    "purpose": "purpose",
    "files": "files",
    "files involved": "files",
    "files created": "files",
    "files changed": "files",
    "status": "status",
    "checkpoint": "checkpoint",
}

# Where an entry came from: typed at the CLI, imported from a hand-written log, written by a
# plugin run, or (later) folded from an AI coding agent's tool-call hook payloads.
Source = Literal["cli", "import", "plugin", "hook"]


class Model(BaseModel):
    """Base for every schema model: unknown keys are an error, validators are built lazily."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class Section(Model):
    """A free section of an entry (Attempts, Conclusion, Results, ...).

    `items` holds the values: an inline paragraph is one item, a list one item per element.
    `text` holds verbatim what is neither (a table, a code block, a lead paragraph before a list).
    `ordered` remembers a numbered list so it renders back as one.
    """

    name: str
    items: list[str] = Field(default_factory=list)
    text: str = ""
    ordered: bool = False


class Note(Model):
    """An annotation a hand-written log glued to a value: `read_file (multiple)`, `` `x.md` — Authoritative plan ``.

    `kind` "tool" or "file" annotates `tools[index]` / `files[index]`; kind "files" (index -1) is a line written
    among the files that names no file (`Git repository`, a diffstat), kept so it renders back where it was.
    """

    kind: Literal["tool", "file", "files"]
    index: int
    text: str


class Entry(Model):
    """One step of work in the tool-calls log."""

    number: int
    label: str
    title: str = ""
    timestamp: str = ""
    tools: list[str] = Field(default_factory=list)
    purpose: str = ""
    files: list[str] = Field(default_factory=list)
    status: Status | None = None
    status_text: str = ""
    sections: list[Section] = Field(default_factory=list)
    checkpoint: str | None = None
    notes: list[Note] = Field(default_factory=list)
    source: Source = "cli"
    # Room for agent hooks: a pre-call and a post-call event fold into one entry by tool_use_id.
    agent_session_id: str | None = None
    tool_use_id: str | None = None

    def shown_status(self) -> str:
        return shown_status(self.status, self.status_text, as_written=self.source == "import")

    def labelled_tools(self) -> list[str]:
        """The tools as the log writes them, each with its note: `read_file (multiple)`."""
        notes = {n.index: n.text for n in self.notes if n.kind == "tool"}
        return [f"{tool} ({notes[i]})" if i in notes else tool for i, tool in enumerate(self.tools)]

    def labelled_files(self) -> list[str]:
        """The files as the log writes them, each with its note (`x.md — Authoritative plan`), then the lines
        written among them that name no file (`Git repository`)."""
        notes = {n.index: n.text for n in self.notes if n.kind == "file"}
        files = [f"{path} — {notes[i]}" if i in notes else path for i, path in enumerate(self.files)]
        return files + [n.text for n in self.notes if n.kind == "files"]


class Checkpoint(Model):
    """A `## CHECKPOINT: title` (or `## FINAL CHECKPOINT[: title]`) section between entries."""

    title: str
    status: Status | None = None
    status_text: str = ""
    sections: list[Section] = Field(default_factory=list)
    text: str = ""
    after_entry: int | None = None
    final: bool = False

    def shown_status(self) -> str:
        # Only the importer gives a checkpoint a text of its own (`log checkpoint --status` takes the enum).
        return shown_status(self.status, self.status_text, as_written=bool(self.status_text))


class Session(Model):
    """A working session; rendered as a `## Session Start: <date>` heading."""

    number: int
    date: str
    started: str
    recovered: str | None = None


class Block(Model):
    """Markdown kept verbatim: an importer's not-understood content, a closure block, a preamble."""

    heading: str = ""
    text: str = ""
    after_entry: int | None = None


class Environment(Model):
    """Where a baseline or a run was taken: read from package metadata, never by importing."""

    python: str
    platform: str
    packages: dict[str, str | None] = Field(default_factory=dict)
    nvidia_smi: str | None = None


class Baseline(Model):
    """The state of the repository when a milestone started (or was adopted by import)."""

    sha: str | None
    branch: str | None
    dirty_files: list[str] = Field(default_factory=list)
    diff_patch: str | None = None
    time: str
    environment: Environment


RunStatus = Literal["running", "completed", "failed", "interrupted"]


class Run(Model):
    """One plugin execution and its evidence folder `submission_runs/<run id>/`."""

    id: str
    kind: Literal["train", "eval"]
    plugin: str
    path: str
    config: str | None = None
    status: RunStatus
    started: str
    ended: str | None = None
    entry: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


ThresholdOp = Literal[">=", "<=", ">", "<", "=="]


class Threshold(Model):
    """An acceptance threshold such as `eval.primary_score>=0.4`, registered before the runs it judges."""

    key: str  # `train.<final metrics key>` or `eval.<eval_summary.json key path>`
    op: ThresholdOp
    value: float

    @property
    def expression(self) -> str:
        return f"{self.key}{self.op}{self.value:g}"


class AcceptedThreshold(Model):
    """A threshold as the milestone holds it: when it was registered and which runs already existed."""

    threshold: Threshold
    time: str
    runs_before: list[str] = Field(default_factory=list)  # non-empty: set or changed after these runs
    replaced: Threshold | None = None  # the earlier threshold on the same key, when this one changed it


class ClosedInfo(Model):
    """What `close` recorded; the commit SHA is found later through the `Milestone:` trailer."""

    time: str
    forced: bool = False
    open_entries: list[int] = Field(default_factory=list)
    skipped_hooks: bool = False
    unmet_thresholds: list[str] = Field(default_factory=list)  # closed anyway with --force
    # Set by history import: a hand-run milestone's closing commit (`M45: ...`) and/or the heading of the
    # log's closure block (`## M46 MILESTONE CLOSED`) that said it closed. A ledger closed by `close` has neither.
    commit: str | None = None
    closure: str | None = None
    # What the documents show that neither the ledger nor the evidence holds (gates, checks, git's files,
    # branch, executive summary, plan notes): `verify` renders the documents again from it. See closing/record.py.
    rendered_from: dict[str, Any] | None = None


# --- ledger events --------------------------------------------------------------------------


class _Event(Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    time: str
    # A random id, given when the event is first encoded: a line written twice (a copy, a replayed
    # append) repeats it, and readers refuse the ledger. Events written before ids existed have none.
    id: str | None = None
    # The sha256 of the previous line (`ledger.GENESIS` for the first): set by the writer at append
    # time, checked by every reader. Events written before the chain existed have none.
    prev: str | None = None


class MilestoneStarted(_Event):
    kind: Literal["milestone_started"] = "milestone_started"
    milestone: str
    title: str
    phase: int
    baseline: Baseline
    source: Source = "cli"
    imported_from: str | None = None


class SessionStarted(_Event):
    kind: Literal["session_started"] = "session_started"
    session: Session


class EntryAdded(_Event):
    kind: Literal["entry_added"] = "entry_added"
    entry: Entry


class EntryUpdated(_Event):
    """An amendment of entry `number`; sections given here add items to same-named sections."""

    kind: Literal["entry_updated"] = "entry_updated"
    number: int
    status: Status | None = None
    status_text: str | None = None
    sections: list[Section] = Field(default_factory=list)
    checkpoint: str | None = None
    source: Source = "cli"


class CheckpointAdded(_Event):
    kind: Literal["checkpoint_added"] = "checkpoint_added"
    checkpoint: Checkpoint


class BlockAdded(_Event):
    kind: Literal["block_added"] = "block_added"
    block: Block


class RunRecorded(_Event):
    """The latest state of a run; a later event for the same run id supersedes an earlier one."""

    kind: Literal["run_recorded"] = "run_recorded"
    run: Run


class ThresholdAccepted(_Event):
    """`start --accept` or `milestone accept`: a threshold that `close` will hold the runs to."""

    kind: Literal["threshold_accepted"] = "threshold_accepted"
    threshold: Threshold
    runs_before: list[str] = Field(default_factory=list)


class MilestoneClosed(_Event):
    kind: Literal["milestone_closed"] = "milestone_closed"
    closed: ClosedInfo


Event = Annotated[
    Union[
        MilestoneStarted,
        SessionStarted,
        EntryAdded,
        EntryUpdated,
        CheckpointAdded,
        BlockAdded,
        RunRecorded,
        ThresholdAccepted,
        MilestoneClosed,
    ],
    Field(discriminator="kind"),
]


class EventLine(Model):
    """Wrapper used to validate one ledger line against the union of events."""

    event: Event


# --- folded state -----------------------------------------------------------------------------


class TimelineItem(Model):
    """Position of one rendered block in the tool-calls log, in ledger order."""

    type: Literal["session", "entry", "checkpoint", "block"]
    index: int


class Milestone(Model):
    """The fold of a ledger: what `milestone show --json` prints and templates receive."""

    id: str
    title: str
    phase: int
    status: Literal["open", "closed"]
    baseline: Baseline
    source: Source = "cli"
    imported_from: str | None = None
    started: str
    sessions: list[Session] = Field(default_factory=list)
    entries: list[Entry] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    blocks: list[Block] = Field(default_factory=list)
    runs: list[Run] = Field(default_factory=list)
    thresholds: list[AcceptedThreshold] = Field(default_factory=list)
    timeline: list[TimelineItem] = Field(default_factory=list)
    closed: ClosedInfo | None = None
    commit: str | None = None
