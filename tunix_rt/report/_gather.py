"""Phase 1 of the report, gather: every milestone's ledger, tool-calls view and run evidence, read into plain
typed views. Reads only, through the same readers `close` uses, so a number on a page is the evidence's number."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt import evidence, milestones, views
from tunix_rt.closing.facts import judge_all
from tunix_rt.closing.runs import Breakdown, Row, RunFacts, Sample, headline, read_run, samples
from tunix_rt.closing.text import evenly_spaced, fmt
from tunix_rt.errors import TunixError
from tunix_rt.models import Milestone
from tunix_rt.project import Project

# A curve of more points than this is drawn from evenly spaced ones: an SVG path per point would make a
# 100,000-step run a page of megabytes, and a chart a few hundred pixels wide shows no more.
CURVE_POINTS = 1500


@dataclass(frozen=True)
class Verified:
    """`evidence.verify` of one run folder, as the page shows it."""

    ok: bool
    text: str  # "ok (12 files)" or "2 problem(s)"
    problems: list[str]
    unlisted: list[str]


@dataclass(frozen=True)
class Curve:
    """One run's loss over its steps, as `metrics.jsonl` holds it."""

    run: str
    steps: list[int]
    loss: list[float]
    eval_steps: list[int]
    eval_loss: list[float]


@dataclass(frozen=True)
class EvalTable:
    """`eval_summary.json` of one run: the totals and each `by_<group>` breakdown."""

    label: str  # `normalised 7/20 (35.0 %)`
    items: str  # `20 scored of 20`
    totals: list[Row]
    breakdowns: list[Breakdown]


@dataclass(frozen=True)
class RunView:
    id: str
    kind: str
    status: str
    folder: str
    final_loss: str
    performance: list[Row]
    eval: EvalTable | None
    verified: Verified
    error: str | None


@dataclass(frozen=True)
class ThresholdView:
    expression: str
    measured: str
    run: str
    met: bool


@dataclass(frozen=True)
class MilestoneView:
    """One milestone's page and its index row."""

    id: str
    title: str
    phase: int
    status: str  # "open" / "closed"
    history: bool  # hand-run before the tool, imported closed
    started: str
    closed: str | None
    commit: str | None
    entries_done: int
    entries_total: int
    runs: list[RunView]
    thresholds: list[ThresholdView]
    final_loss: float | None  # the headline (best) train run's
    final_loss_run: str | None
    primary_metric: str | None  # the headline evaluation's
    primary_score: float | None
    primary_label: str | None
    primary_run: str | None
    curves: list[Curve]
    samples: list[Sample]
    samples_run: str | None
    toolcalls: str  # the Markdown view as written (or rendered from the ledger when the file is missing)
    problem: str | None = None  # the ledger could not be read: the page says why

    @property
    def page(self) -> str:
        return f"{self.id}.html"

    @property
    def thresholds_met(self) -> int:
        return sum(1 for t in self.thresholds if t.met)

    @property
    def final_loss_text(self) -> str:
        return fmt(self.final_loss)

    @property
    def verify_failures(self) -> int:
        return sum(1 for r in self.runs if not r.verified.ok)


@dataclass(frozen=True)
class Site:
    """Everything the report shows, in milestone order."""

    project: str
    milestones: list[MilestoneView] = field(default_factory=list)


def gather(project: Project) -> Site:
    return Site(project.root.name, [_milestone(project, mid, path) for mid, path in project.all_ledgers()])


def _milestone(project: Project, mid: str, ledger_path: Path) -> MilestoneView:
    try:
        state = milestones.show(project, mid)
    except TunixError as exc:
        phase = next((number for number, folder in project.phase_dirs() if folder == ledger_path.parent), 0)
        return _unreadable(mid, phase, str(exc))
    summary_dir = ledger_path.parent
    facts = [read_run(project, run, summary_dir) for run in state.runs]
    head = headline(state, facts)
    train, evaluation = head.train, head.evaluation
    summary = evaluation.eval if evaluation is not None else None
    return MilestoneView(
        id=state.id,
        title=state.title,
        phase=state.phase,
        status=state.status,
        history=milestones.is_history(state),
        started=state.started,
        closed=state.closed.time if state.closed else None,
        commit=state.commit,
        entries_done=head.entries_done,
        entries_total=head.entries_total,
        runs=[_run(project, fact) for fact in facts],
        thresholds=[ThresholdView(j.threshold.expression, j.measured_text, j.run or "—", j.met)
                    for j in judge_all(state, head)],
        final_loss=train.final_loss if train is not None else None,
        final_loss_run=train.run.id if train is not None else None,
        primary_metric=summary.primary_metric if summary is not None else None,
        primary_score=summary.primary_score if summary is not None else None,
        primary_label=summary.primary_label() if summary is not None else None,
        primary_run=evaluation.run.id if evaluation is not None else None,
        curves=[curve for curve in (_curve(f) for f in facts) if curve.steps],
        samples=samples(project, evaluation),
        samples_run=evaluation.run.id if evaluation is not None else None,
        toolcalls=_toolcalls(project, state, ledger_path),
    )


def _unreadable(mid: str, phase: int, problem: str) -> MilestoneView:
    return MilestoneView(
        id=mid, title="", phase=phase, status="unreadable", history=False, started="", closed=None, commit=None,
        entries_done=0, entries_total=0, runs=[], thresholds=[], final_loss=None, final_loss_run=None,
        primary_metric=None, primary_score=None, primary_label=None, primary_run=None, curves=[], samples=[],
        samples_run=None, toolcalls="", problem=problem,
    )


def _toolcalls(project: Project, state: Milestone, ledger_path: Path) -> str:
    path = views.toolcalls_path(ledger_path, state.id)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return views.full_text(project, state).text  # a view not (yet) written: the same render, not saved


def _run(project: Project, fact: RunFacts) -> RunView:
    return RunView(
        id=fact.run.id,
        kind=fact.run.kind,
        status=fact.run.status,
        folder=fact.folder,
        final_loss=fact.final_loss_text,
        performance=fact.performance,
        eval=_eval_table(fact),
        verified=verify(project, fact.folder),
        error=fact.error,
    )


def _eval_table(fact: RunFacts) -> EvalTable | None:
    summary = fact.eval
    if summary is None:
        return None
    totals = summary.totals
    rows = [Row("n", fmt(totals.n))]
    for metric in ("exact", "normalised", "contains"):
        count, rate = getattr(totals, metric), getattr(totals, f"{metric}_rate")
        if count is not None or rate is not None:
            rows.append(Row(metric, f"{fmt(count)} ({fmt(rate)})"))
    return EvalTable(summary.primary_label(), f"{summary.n_scored} scored of {summary.n_items}", rows,
                     fact.breakdowns)


def _curve(fact: RunFacts) -> Curve:
    lines = [s for s in fact.metrics.steps if s.loss is not None]
    evals = [s for s in fact.metrics.steps if s.eval_loss is not None]
    lines, evals = evenly_spaced(lines, CURVE_POINTS), evenly_spaced(evals, CURVE_POINTS)
    return Curve(fact.run.id, [s.step for s in lines], [float(s.loss) for s in lines if s.loss is not None],
                 [s.step for s in evals], [float(s.eval_loss) for s in evals if s.eval_loss is not None])


def verify(project: Project, folder: str) -> Verified:
    """The run's evidence checked again (`milestone runs verify`): hashes, listed files, the manifest."""
    try:
        report = evidence.verify(project, str(project.root / folder))
    except TunixError as exc:
        return Verified(False, "cannot verify", [str(exc)], [])
    text = f"ok ({report.checked} files)" if report.ok else f"{len(report.problems)} problem(s)"
    return Verified(report.ok, text, report.problems, report.unlisted)
