"""Phase 1 of close, gather: a snapshot of the ledger, git's view of the files since the baseline, and every run's
evidence, as one typed `Facts` object. Reads only; holds the ledger lock just long enough to copy the file."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tunix_rt import ledger, thresholds, vcs
from tunix_rt.closing.runs import Comparison, Failure, Headline, RunFacts, Sample, compare, headline, read_run, samples
from tunix_rt.closing.text import FileRow, items, read_doc, sections
from tunix_rt.errors import TunixError
from tunix_rt.ids import run_prefix
from tunix_rt.models import Milestone
from tunix_rt.project import Project
from tunix_rt.redact import redact

FAILED_SECTIONS = ("Attempts", "Error", "Errors", "Conclusion", "Resolution", "Output")
_ERROR_WORDS = re.compile(r"\b(error|exception|traceback|failed|failure|fatal|refused|denied|not found|cannot)\b", re.I)
_OTHER_MILESTONE_DOC = re.compile(r"^(?P<id>M\d+)[_.]")


@dataclass(frozen=True)
class Layout:
    """Paths of the milestone's own documents and evidence (relative, '/')."""

    folder: str
    mid: str
    ledger: str
    summary: str
    audit: str
    toolcalls: str
    master: str
    milestones_dir: str
    runs_dir: str
    run_folders: tuple[str, ...]

    @property
    def documents(self) -> tuple[str, ...]:
        """What close renders and commits itself."""
        return (self.summary, self.audit, self.toolcalls, self.ledger, self.master)

    def owner(self, path: str) -> str | None:
        """The other milestone a path belongs to (its documents, ledger or evidence), or None."""
        name = path.rsplit("/", 1)[-1]
        if path.startswith(self.milestones_dir + "/"):
            match = _OTHER_MILESTONE_DOC.match(name)
            if match and match.group("id").upper() != self.mid:
                return match.group("id").upper()
        if path.startswith(self.runs_dir + "/"):
            run = path[len(self.runs_dir) + 1 :].split("/", 1)[0]
            match = re.fullmatch(r"m(\d+)_v\d+", run, re.I)
            if match and not any(path == f or path.startswith(f + "/") for f in self.run_folders):
                other = f"M{match.group(1)}"
                if run_prefix(self.mid) != f"m{match.group(1)}":
                    return other
        return None

    def group(self, path: str) -> str:
        name = path.rsplit("/", 1)[-1]
        if path == self.master or (
            path.startswith(self.folder + "/") and (name.startswith(self.mid + "_") or name.startswith(self.mid + "."))
        ):
            return "document"
        if any(path == f or path.startswith(f + "/") for f in self.run_folders):
            return "evidence"
        if path.startswith(f"{self.runs_dir}/{run_prefix(self.mid)}_"):
            return "evidence"
        return "work"


@dataclass(frozen=True)
class PlanNotes:
    """What people wrote in the plan and answers that the summary quotes."""

    objective: str
    definition_of_done: list[str]
    lessons: list[str]
    next_steps: list[str]
    empty_docs: list[str]


@dataclass(frozen=True)
class Changes:
    """The files since the baseline: the milestone's work, its own documents/evidence, and what it leaves out."""

    work: list[FileRow]
    own: list[FileRow]
    left_alone: list[str]  # dirty before start and unchanged since
    others: list[tuple[str, str]]  # (path, other milestone id): never swept into this close
    since_head: list[str]  # what differs from HEAD now (the commit is made on HEAD, not on the baseline)


@dataclass
class Facts:
    """Everything the later phases need, gathered once."""

    mid: str
    state: Milestone
    ledger_bytes: bytes  # the ledger as read; the commit phase refuses to proceed if it changed
    resumed: bool
    layout: Layout
    branch: str | None
    runs: list[RunFacts]
    headline: Headline
    comparison: Comparison | None
    samples: list[Sample]
    failures: list[Failure]
    judged: list[thresholds.Judged]
    changes: Changes
    notes: PlanNotes
    warnings: list[str] = field(default_factory=list)


def layout(project: Project, state: Milestone) -> Layout:
    ledger_path = project.ledger(state.id)
    folder = project.relative(ledger_path.parent)
    return Layout(
        folder=folder,
        mid=state.id,
        ledger=project.relative(ledger_path),
        summary=f"{folder}/{state.id}_summary.md",
        audit=f"{folder}/{state.id}_audit.md",
        toolcalls=f"{folder}/{state.id}_toolcalls.md",
        master=Path(project.settings.master_doc).as_posix(),
        milestones_dir=Path(project.settings.milestones_dir).as_posix().rstrip("/"),
        runs_dir=Path(project.settings.runs_dir).as_posix().rstrip("/"),
        run_folders=tuple(sorted({run.path.rstrip("/") for run in state.runs})),
    )


def _patch_sections(text: str) -> dict[str, str]:
    """A `git diff` patch split per file, keyed by the b/ path of its header."""
    found: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            if current is not None:
                found[current] = "\n".join(lines).rstrip("\n")
            match = re.match(r"diff --git a/(.*) b/(.*)$", line)
            current = match.group(2) if match else line
            lines = [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines).rstrip("\n")
    return found


def unchanged_since_start(project: Project, repo: Any, state: Milestone) -> set[str]:
    """Files dirty when the milestone started that have not changed since: not the milestone's work.

    A tracked file counts as changed when its diff against the baseline differs from the one in the
    patch recorded at start; an untracked one when it was modified after the baseline time.
    """
    baseline = state.baseline
    if not baseline.dirty_files:
        return set()
    recorded: dict[str, str] = {}
    if baseline.diff_patch:
        candidate = project.root / baseline.diff_patch
        text = baseline.diff_patch
        if "\n" not in baseline.diff_patch and candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace")
        recorded = _patch_sections(text)
    started = datetime.fromisoformat(baseline.time.replace("Z", "+00:00")).timestamp()
    unchanged: set[str] = set()
    for path in baseline.dirty_files:
        full = project.root / path
        if path in recorded:
            now_patch, _ = redact(vcs.file_patch(repo, baseline.sha, path))
            if now_patch.rstrip("\n") == recorded[path]:
                unchanged.add(path)
        elif full.exists() and full.stat().st_mtime <= started:
            unchanged.add(path)
    return unchanged


def changes(project: Project, repo: Any, state: Milestone, lay: Layout) -> Changes:
    """git's numbers since the baseline, split by whose they are."""
    left_alone = unchanged_since_start(project, repo, state)
    head = vcs.head_sha(repo)
    since_head = [s.path for s in vcs.changed_since(repo, head)
                  if s.path not in left_alone and lay.owner(s.path) is None] if head != state.baseline.sha else []
    work: list[FileRow] = []
    own: list[FileRow] = []
    others: list[tuple[str, str]] = []
    for stat in vcs.changed_since(repo, state.baseline.sha):
        if stat.path in left_alone or stat.path in lay.documents:
            continue
        other = lay.owner(stat.path)
        if other is not None:
            others.append((stat.path, other))
            continue
        row = FileRow(stat.path, stat.change, stat.insertions, stat.deletions, lay.group(stat.path))
        (work if row.group == "work" else own).append(row)
    return Changes(work, own, sorted(left_alone), others, since_head)


def plan_notes(project: Project, lay: Layout) -> PlanNotes:
    folder = project.root / lay.folder
    plan = read_doc(folder / f"{lay.mid}_plan.md")
    answers = read_doc(folder / f"{lay.mid}_answers.md")
    objective = " ".join(sections(plan, r"\bobjective")[:1]).strip()
    done = [i for body in sections(plan, r"definition of done|acceptance|success criteria") for i in items(body)]
    lessons = [i for text in (plan, answers) for body in sections(text, r"lesson|learned") for i in items(body)]
    steps = [i for text in (plan, answers) for body in sections(text, r"next step|follow.?up|future work")
             for i in items(body)]
    empty = [f"{lay.folder}/{lay.mid}_{kind}.md" for kind, text in (("plan", plan), ("answers", answers))
             if not [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]]
    return PlanNotes(objective, done[:12], lessons[:8], steps[:8], empty)


def _error_lines(text: str, limit: int = 3) -> list[str]:
    """The lines that name an error or failure, not exit-code preambles; else the first lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if _ERROR_WORDS.search(line) and not re.fullmatch(r"(?i)exit code:? \d+", line)]
    return (named or lines)[:limit]


def failures(state: Milestone, runs: list[RunFacts]) -> list[Failure]:
    found: list[Failure] = []
    for entry in state.entries:
        if entry.status not in ("failed", "blocked"):
            continue
        lines: list[str] = []
        for section in entry.sections:
            if section.name in FAILED_SECTIONS:
                # `**Error:** item`, as the view writes a one-item section, for every item.
                lines += [f"**{section.name}:** {item}" for item in section.items]
                if section.text:
                    lines += [f"**{section.name}:** {line}" for line in _error_lines(section.text)]
        status = entry.shown_status()
        found.append(Failure(f"Entry {entry.label} — {entry.title or entry.purpose}", status, lines[:8]))
    for fact in runs:
        if fact.run.status in ("failed", "interrupted") and not any(fact.run.id in f.title for f in found):
            found.append(Failure(f"Run {fact.run.id} ({fact.run.kind})", fact.run.status.upper(),
                                 _error_lines(fact.error or "")))
    return found


def judge_all(state: Milestone, head: Headline) -> list[thresholds.Judged]:
    train, evaluation = head.train, head.evaluation
    return [
        thresholds.judge(
            held.threshold,
            train.final if train else None,
            train.run.id if train else None,
            evaluation.eval if evaluation else None,
            evaluation.run.id if evaluation else None,
        )
        for held in state.thresholds
    ]


def _redacted(text: str | None) -> str | None:
    return redact(text)[0] if text else text


def snapshot(path: Path) -> tuple[Milestone, bytes]:
    """The ledger's bytes and fold, read under the lock (released at once: gates run without it)."""
    with ledger.writer(path) as w:
        data = os.pread(w.fd, w.size, 0)
        state = ledger.fold(path, w.events())
    return state, data


def resuming(repo: Any, state: Milestone) -> bool:
    """False for an open milestone; True for a close interrupted after its event; refuses a closed one.

    Decided on the very snapshot the commit phase compares against: a close racing this one appends
    its event and makes its commit under one hold of the lock, so a snapshot that says closed either
    has that commit to show (refused) or is a close that was killed in between (resumed).
    """
    if state.status != "closed":
        return False
    from tunix_rt.milestones import is_history

    if is_history(state):  # imported closed: its hand-written documents are its record
        assert state.closed is not None
        where = f"commit {state.closed.commit[:12]}" if state.closed.commit else f"its log's {state.closed.closure!r}"
        raise TunixError(f"milestone {state.id} is already closed (hand-run, {where})")
    sha = vcs.trailer_commit(repo, state.id)
    if sha is not None:
        raise TunixError(f"milestone {state.id} is already closed (commit {sha[:12]})")
    return True


def from_ledger(project: Project, state: Milestone, data: bytes, *, resumed: bool) -> Facts:
    """The facts the ledger and the evidence files hold; git's and the plan's are left empty (`gather` fills
    them in from the work tree, `verify` from what the close recorded)."""
    lay = layout(project, state)
    summary_dir = project.root / lay.folder
    runs = [read_run(project, run, summary_dir) for run in state.runs]
    head = headline(state, runs)
    return Facts(
        mid=state.id,
        state=state,
        ledger_bytes=data,
        resumed=resumed,
        layout=lay,
        branch=None,
        runs=runs,
        headline=head,
        comparison=compare(project, state, head, summary_dir),
        samples=samples(project, head.evaluation),
        failures=failures(state, runs),
        judged=judge_all(state, head),
        changes=Changes([], [], [], [], []),
        notes=PlanNotes("", [], [], [], []),
    )


def gather(project: Project, repo: Any, mid: str) -> Facts:
    state, data = snapshot(project.ledger(mid))
    facts = from_ledger(project, state, data, resumed=resuming(repo, state))
    lay, runs = facts.layout, facts.runs
    facts.branch = _redacted(vcs.current_branch(repo))  # a branch name is text from outside like any other (D16)
    facts.changes = changes(project, repo, state, lay)
    facts.notes = notes = plan_notes(project, lay)
    facts.warnings += [f"{doc} is empty (nothing beyond its scaffold)" for doc in notes.empty_docs]
    facts.warnings += [f"{path} belongs to {other}: left out of this close" for path, other in facts.changes.others]
    facts.warnings += [f"run {f.run.id} has no loss_curve.png" for f in runs if f.run.kind == "train" and not f.png
                       and f.run.status == "completed"]
    return facts
