"""What the summary shows about runs: one run's facts read through the evidence contract, the headline runs,
the comparison with the previous milestone, and sample predictions."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt import evidence, ledger
from tunix_rt.closing.text import cell, change, evenly_spaced, flatten, fmt, human_size
from tunix_rt.errors import TunixError
from tunix_rt.evidence import EvalSummary, FinalMetrics, MetricsFile
from tunix_rt.ids import milestone_number
from tunix_rt.models import Milestone, Run
from tunix_rt.project import Project

# The train metrics a reader wants first, labelled once for the summary, the master doc and the commit.
TRAIN_LABELS: tuple[tuple[str, str], ...] = (
    ("final_loss", "Final loss (last window)"),
    ("eval_loss", "Held-out loss"),
    ("train_loss", "Train loss (run average)"),
    ("step", "Steps"),
    ("train_runtime", "Runtime (s)"),
    ("train_tokens_per_second", "Non-pad tokens/s"),
    ("train_samples_per_second", "Samples/s"),
    ("padding_fraction", "Padding fraction"),
    ("mfu", "MFU"),
)
SAMPLE_COUNT = 5
LOSS_ROWS = 6  # evenly spaced per-step lines in the summary; loss_curve.png and metrics.jsonl hold them all


@dataclass(frozen=True)
class Row:
    label: str
    value: str


@dataclass(frozen=True)
class LossRow:
    step: str
    epoch: str
    loss: str
    learning_rate: str
    eval_loss: str


@dataclass(frozen=True)
class Breakdown:
    """One `by_<group>` table of an eval summary."""

    name: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Artifact:
    path: str
    size: str
    sha256: str
    tracked: bool


@dataclass
class RunFacts:
    """Everything the documents show about one run, read from its evidence folder."""

    run: Run
    folder: str
    metrics: MetricsFile
    eval: EvalSummary | None
    config_changed: list[Row]  # values that differ from the plugin's defaults
    config_full: str  # the resolved config as compact YAML (one line per leaf mapping)
    config_count: int
    defaults_known: bool
    performance: list[Row]
    loss_rows: list[LossRow]
    png: str | None  # relative to the summary's folder
    breakdowns: list[Breakdown]
    artifacts: list[Artifact]
    environment: list[Row]
    error: str | None  # a failed run's one-line reason, from its manifest
    verify: str = ""  # "ok (N files)" or the problem; filled by the checks phase

    @property
    def final(self) -> FinalMetrics | None:
        return self.metrics.final

    @property
    def final_loss(self) -> float | None:
        final = self.metrics.final
        if final is None:
            return None
        return final.final_loss if final.final_loss is not None else final.train_loss

    @property
    def final_loss_text(self) -> str:
        return fmt(self.final_loss)

    @property
    def eval_label(self) -> str | None:
        return self.eval.primary_label() if self.eval is not None else None

    @property
    def brief(self) -> str:
        """One line for the master doc and the commit body, with the summary's labels."""
        parts = [f"{row.label.lower()} {row.value}" for row in self.performance[:3]]
        if self.eval is not None:
            parts.append(f"eval {self.eval.primary_label()}")
        if self.error:
            parts.append(f"error: {cell(self.error, 100)}")
        return ", ".join(parts) or self.run.status


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _compact_yaml(config: Any) -> str:
    """The whole config, each innermost mapping on one line: complete, and a few lines long."""
    import yaml

    if not isinstance(config, dict) or not config:
        return ""
    return str(yaml.safe_dump(config, default_flow_style=None, sort_keys=False, width=116, allow_unicode=True)).strip()


def _config_rows(folder: Path) -> tuple[list[Row], str, int, bool]:
    config = _read_yaml(folder / evidence.CONFIG)
    rows = [Row(k, fmt(v)) for k, v in flatten(config if isinstance(config, dict) else {})]
    full = _compact_yaml(config)
    defaults = _read_yaml(folder / evidence.CONFIG_DEFAULTS)
    if not isinstance(defaults, dict):
        return rows, full, len(rows), False
    default_values = dict(flatten(defaults))
    changed = [Row(k, fmt(v)) for k, v in flatten(config if isinstance(config, dict) else {})
               if k not in default_values or default_values[k] != v]
    return changed, full, len(rows), True


def _performance(final: FinalMetrics | None) -> list[Row]:
    if final is None:
        return []
    return [Row(label, fmt(getattr(final, key))) for key, label in TRAIN_LABELS if getattr(final, key) is not None]


def _breakdowns(summary: EvalSummary | None) -> list[Breakdown]:
    if summary is None:
        return []
    tables = []
    for name in ("by_section", "by_category", "by_difficulty"):
        groups = getattr(summary, name)
        if not groups:
            continue
        rate = f"{summary.primary_metric}_rate"
        columns = ["n", summary.primary_metric, rate]
        rows = [[group, fmt(t.n), fmt(getattr(t, summary.primary_metric, None)), fmt(getattr(t, rate, None))]
                for group, t in groups.items()]
        tables.append(Breakdown(name.removeprefix("by_"), columns, rows))
    return tables


def _environment(data: Any) -> list[Row]:
    wanted = ("python", "platform", "cpu_model", "cpu_usable", "device", "gpu", "torch", "cuda",
              "packages.transformers", "packages.tunix-rt")
    rows = []
    flat = dict(flatten(data if isinstance(data, dict) else {}))
    for key in wanted:
        value = flat.get(key)
        if value is not None:
            text = str(value).strip().splitlines()[0] if isinstance(value, str) else fmt(value)
            rows.append(Row(key, cell(text, 100)))
    return rows


def read_run(project: Project, run: Run, summary_dir: Path) -> RunFacts:
    folder = project.root / run.path
    metrics = evidence.read_metrics(folder / evidence.METRICS)
    summary = evidence.read_eval_summary(folder / evidence.EVAL_SUMMARY)
    changed, full, count, defaults_known = _config_rows(folder)
    loss_rows = [
        LossRow(fmt(s.step), fmt(s.epoch), fmt(s.loss), fmt(s.learning_rate), fmt(s.eval_loss))
        for s in evenly_spaced([s for s in metrics.steps if s.loss is not None], LOSS_ROWS)
    ]
    png_path = folder / evidence.LOSS_CURVE
    png = Path(os.path.relpath(png_path, summary_dir)).as_posix() if png_path.is_file() else None
    artifacts = []
    listed = _read_json(folder / evidence.ARTIFACTS)
    for item in listed.get("files", []) if isinstance(listed, dict) else []:
        if isinstance(item, dict):
            artifacts.append(Artifact(str(item.get("path", "")), human_size(int(item.get("bytes", 0) or 0)),
                                      str(item.get("sha256", ""))[:12], bool(item.get("tracked", True))))
    manifest = _read_json(folder / evidence.MANIFEST)
    error = manifest.get("error") if isinstance(manifest, dict) and isinstance(manifest.get("error"), str) else None
    return RunFacts(
        run=run,
        folder=run.path,
        metrics=metrics,
        eval=summary,
        config_changed=changed,
        config_full=full,
        config_count=count,
        defaults_known=defaults_known,
        performance=_performance(metrics.final),
        loss_rows=loss_rows,
        png=png,
        breakdowns=_breakdowns(summary),
        artifacts=artifacts,
        environment=_environment(_read_json(folder / evidence.ENV_SNAPSHOT)),
        error=error,
    )


# --- headline runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """The milestone's result in one place: the best train run and the latest scored evaluation.

    The summary, the master-doc block and the commit message all print `text`, so they use the same
    labels and the same primary metric.
    """

    train: RunFacts | None
    evaluation: RunFacts | None
    entries_done: int
    entries_total: int

    @property
    def text(self) -> str:
        parts = []
        if self.train is not None and self.train.final_loss is not None:
            parts.append(f"final loss {self.train.final_loss:.4g} ({self.train.run.id})")
        if self.evaluation is not None and self.evaluation.eval is not None:
            parts.append(f"eval {self.evaluation.eval.primary_label()} ({self.evaluation.run.id})")
        if not parts:
            parts.append(f"{self.entries_done} of {self.entries_total} entries completed")
        return ", ".join(parts)


def best_train(facts: list[RunFacts]) -> RunFacts | None:
    """The completed training run with the lowest final loss."""
    scored = [(f.final_loss, i, f) for i, f in enumerate(facts)
              if f.run.kind == "train" and f.run.status == "completed" and f.final_loss is not None]
    return min(scored, key=lambda t: (t[0], t[1]))[2] if scored else None


def latest_eval(facts: list[RunFacts], train: RunFacts | None) -> RunFacts | None:
    """The latest completed eval run with a summary, else the headline train run's own evaluation."""
    for fact in reversed(facts):
        if fact.run.kind == "eval" and fact.run.status == "completed" and fact.eval is not None:
            return fact
    return train if train is not None and train.eval is not None else None


def headline(state: Milestone, facts: list[RunFacts]) -> Headline:
    train = best_train(facts)
    done = sum(1 for e in state.entries if e.status == "completed")
    return Headline(train, latest_eval(facts, train), done, len(state.entries))


# --- the previous milestone -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    metric: str
    before: str
    after: str
    change: str


@dataclass(frozen=True)
class Comparison:
    milestone: str
    rows: list[CompareRow]
    before_runs: str
    after_runs: str


def _previous(project: Project, state: Milestone, summary_dir: Path) -> tuple[str, Headline] | None:
    """The headline of the nearest earlier milestone whose runs have readable evidence. One with runs but no
    evidence to read (a deleted folder, imported history that kept only its log) would compare as a table of
    dashes, so the search goes on past it."""
    number = milestone_number(state.id)
    for mid, path in reversed(project.all_ledgers()):
        if milestone_number(mid) >= number:
            continue
        try:
            earlier = ledger.load(path)
        except (TunixError, OSError):
            continue
        facts = [read_run(project, run, summary_dir) for run in earlier.runs]
        found = headline(earlier, facts)
        if found.train is not None or found.evaluation is not None:
            return mid, found
    return None


def compare(project: Project, state: Milestone, current: Headline, summary_dir: Path) -> Comparison | None:
    found = _previous(project, state, summary_dir)
    if found is None or (current.train is None and current.evaluation is None):
        return None
    mid, before = found
    rows: list[CompareRow] = []
    for key, label in TRAIN_LABELS:
        a = getattr(before.train.final, key) if before.train and before.train.final else None
        b = getattr(current.train.final, key) if current.train and current.train.final else None
        if a is not None or b is not None:
            rows.append(CompareRow(label, fmt(a), fmt(b), change(a, b)))
    a_eval = before.evaluation.eval if before.evaluation else None
    b_eval = current.evaluation.eval if current.evaluation else None
    if a_eval is not None or b_eval is not None:
        metric = (b_eval or a_eval).primary_metric  # type: ignore[union-attr]
        a = a_eval.primary_score if a_eval is not None and a_eval.primary_metric == metric else None
        b = b_eval.primary_score if b_eval is not None else None
        rows.append(CompareRow(f"Eval {metric} (primary score)", fmt(a), fmt(b), change(a, b)))

    def runs(h: Headline) -> str:
        ids = [f.run.id for f in (h.train, h.evaluation) if f is not None]
        return ", ".join(dict.fromkeys(ids)) or "—"

    return Comparison(mid, rows, runs(before), runs(current))


# --- sample predictions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    id: str
    input: str
    expected: str
    got: str
    correct: bool


def samples(project: Project, evaluation: RunFacts | None, count: int = SAMPLE_COUNT) -> list[Sample]:
    """A few right and wrong predictions of the headline evaluation, spread over the file, in its order."""
    if evaluation is None or evaluation.eval is None:
        return []
    summary = evaluation.eval
    path = project.root / evaluation.folder / (summary.predictions_path or evidence.PREDICTIONS)
    right: list[Sample] = []
    wrong: list[Sample] = []
    for record in evidence.read_json_objects(path, max_lines=100_000):
        raw_scores = record.get("scores")
        scores: dict[str, Any] = raw_scores if isinstance(raw_scores, dict) else {}
        correct = bool(scores.get(summary.primary_metric))
        sample = Sample(cell(str(record.get("id", "")), 40), cell(str(record.get("prompt", "")), 120),
                        cell(str(record.get("expected", "")), 60),
                        cell(str(record.get("extracted") or record.get("generated") or ""), 80), correct)
        (right if correct else wrong).append(sample)
    want_wrong = min(len(wrong), max(count - len(right), (count + 1) // 2))
    picked = evenly_spaced(right, count - want_wrong) + evenly_spaced(wrong, want_wrong)
    order = {id(s): i for i, s in enumerate(right + wrong)}
    return sorted(picked, key=lambda s: (not s.correct, order[id(s)]))[:count]


@dataclass(frozen=True)
class Failure:
    """What was tried and failed: a failed or blocked entry, or a failed run, with its real error lines."""

    title: str
    status: str
    lines: list[str] = field(default_factory=list)
