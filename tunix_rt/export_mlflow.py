"""Each evidence run as one MLflow run: params from its config, metrics from its metrics lines, its files as artifacts.

Three phases: find the runs in scope, read each evidence folder into a `RunRecord` (no MLflow involved, so a
broken folder is refused before anything is sent), then sync each record into its MLflow run. A run is found
again by its `tunix_rt.run_id` tag, so exporting twice updates it: MLflow appends a metric point on every log
and refuses to change a param, so only the (key, step) points and params it lacks are sent; tags are set again
and artifacts are uploaded again to the same paths.

The evidence digest tagged on a run is the sha256 of `artifacts.json`, which lists every file's sha256: one
value that seals the folder, and the one `milestone verify` checks the files against.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from tunix_rt import evidence, milestones
from tunix_rt.errors import MissingDependency, TunixError, WorkFailed
from tunix_rt.models import Run
from tunix_rt.project import Project

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
TAG_RUN_ID = "tunix_rt.run_id"
# MLflow's own limit (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH); a longer value is cut and says so.
PARAM_VALUE_MAX = 6000
# MLflow's limits for one log_batch call.
_METRICS_PER_BATCH = 1000
_PARAMS_PER_BATCH = 100
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


# --- what one evidence run says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One metric value at one step."""

    key: str
    value: float
    step: int
    timestamp_ms: int


@dataclass(frozen=True)
class ArtifactFile:
    """An evidence file and the artifact folder it goes to (None: the run's artifact root)."""

    path: Path
    folder: str | None


@dataclass
class RunRecord:
    """An evidence folder read into what MLflow stores: the input of the sync phase."""

    run_id: str
    milestone: str
    params: dict[str, str]
    points: list[Point]
    tags: dict[str, str]
    files: list[ArtifactFile]
    start_ms: int
    end_ms: int | None
    status: str | None  # MLflow's terminal status; None while the run is still running


@dataclass
class Exported:
    """One evidence run after the export: `--json` prints a list of these."""

    run: str
    milestone: str
    action: Literal["created", "updated", "skipped"]
    mlflow_run_id: str | None = None
    params_logged: int = 0
    metrics_logged: int = 0
    artifacts: int = 0
    reason: str | None = None

    def line(self) -> str:
        if self.action == "skipped":
            return f"skipped {self.run}: {self.reason}"
        return f"exported {self.run} → run {self.mlflow_run_id} ({self.action})"


@dataclass
class ExportResult:
    tracking_uri: str
    experiment: str
    experiment_id: str
    runs: list[Exported] = field(default_factory=list)


# --- the use case ----------------------------------------------------------------------------------------


def export(
    project: Project,
    *,
    milestone: str | None = None,
    all_milestones: bool = False,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> ExportResult:
    """Exports the runs of one milestone (default: the current one) or of all, to the tracking server at
    `tracking_uri` (default: `$MLFLOW_TRACKING_URI`), into `experiment` (default: the project folder's name)."""
    uri = resolve_tracking_uri(tracking_uri)
    if all_milestones and milestone:
        raise TunixError("give --milestone or --all, not both")
    client = _client(uri)
    found = runs_in_scope(project, None if all_milestones else project.resolve_milestone(milestone))
    read = [read_run(project, mid, run) for mid, run in found]
    name = experiment or project.root.name
    done: list[Exported] = []
    try:
        experiment_id = _experiment_id(client, name)
        for item in read:
            done.append(item if isinstance(item, Exported) else sync_run(client, experiment_id, item))
    except _mlflow_error() as exc:
        # The runs synced before the failure stay synced: exporting again finishes the job without duplicates.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkFailed(f"MLflow at {uri}: {first} ({len(done)} of {len(read)} run(s) exported)") from exc
    return ExportResult(tracking_uri=uri, experiment=name, experiment_id=experiment_id, runs=done)


def resolve_tracking_uri(given: str | None) -> str:
    uri = given or os.environ.get(TRACKING_URI_ENV, "")
    if not uri.strip():
        raise TunixError(f"no MLflow tracking server: pass --tracking-uri URI or set {TRACKING_URI_ENV}")
    return uri.strip()


def runs_in_scope(project: Project, milestone: str | None) -> list[tuple[str, Run]]:
    """(milestone id, run) for one milestone's runs, or every milestone's when `milestone` is None."""
    states = [milestones.load(project, milestone)] if milestone else milestones.list_all(project)
    return [(state.id, run) for state in states for run in state.runs]


# --- read: an evidence folder into a RunRecord -------------------------------------------------------------


def read_run(project: Project, milestone: str, run: Run) -> RunRecord | Exported:
    """The record of one run, or why it cannot be exported (no folder here, or a run that never finished)."""
    folder = project.root / run.path
    project.check_inside(folder)
    if not folder.is_dir():
        return Exported(run.id, milestone, "skipped", reason=f"no evidence folder at {run.path}")
    if not (folder / evidence.ARTIFACTS).is_file():
        return Exported(run.id, milestone, "skipped", reason=f"no {evidence.ARTIFACTS} in {run.path} (unfinished)")
    manifest = _manifest(folder)
    summary = evidence.read_eval_summary(folder / evidence.EVAL_SUMMARY)
    start_ms = _ms(manifest.started if manifest else None) or _ms(run.started) or 0
    ended = manifest.ended if manifest else run.ended
    status = manifest.status if manifest else run.status
    return RunRecord(
        run_id=run.id,
        milestone=milestone,
        params=config_params(folder / evidence.CONFIG),
        points=metric_points(evidence.read_metrics(folder / evidence.METRICS), summary, start_ms),
        tags=_tags(folder, milestone, run, manifest, summary),
        files=[ArtifactFile(p, _parent(p, folder)) for p in evidence.tracked_files(project, folder)],
        start_ms=start_ms,
        end_ms=_ms(ended),
        status=_STATUS.get(status),
    )


def _manifest(folder: Path) -> evidence.Manifest | None:
    """The run manifest, or None for evidence without a valid one (hand-made or older runs still export)."""
    try:
        return evidence.load_manifest(folder / evidence.MANIFEST)
    except TunixError:
        return None


def _ms(stamp: str | None) -> int | None:
    """Milliseconds since the epoch (MLflow's clock) of a stored UTC time; None when absent or not a time."""
    try:
        moment = datetime.fromisoformat(stamp or "")
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp() * 1000)


def _parent(path: Path, folder: Path) -> str | None:
    parent = path.relative_to(folder).parent.as_posix()
    return None if parent == "." else parent


def config_params(path: Path) -> dict[str, str]:
    """The run's resolved config flattened to `training.learning_rate` keys; values longer than MLflow
    keeps are cut with a note saying how long they were."""
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TunixError(f"{path}: not a readable YAML config: {str(exc).splitlines()[0]}") from None
    return {key: param_value(value) for key, value in _flatten(config if isinstance(config, dict) else {})}


def _flatten(mapping: dict[Any, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items += _flatten(value, f"{name}.")
        else:
            items.append((name, value))
    return items


def param_value(value: Any) -> str:
    """Strings as they are, anything else as JSON (`null`, `true`, `[1, 2]`), cut visibly to MLflow's limit."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= PARAM_VALUE_MAX:
        return text
    note = f"… [truncated: {len(text)} characters]"
    return text[: PARAM_VALUE_MAX - len(note)] + note


def metric_points(metrics: evidence.MetricsFile, summary: evidence.EvalSummary | None, start_ms: int) -> list[Point]:
    """Every numeric key of every step line at its own step (timed by its `elapsed_s`); the final line as
    `train.<key>` and the eval summary's score and totals as `eval.<key>`, the names acceptance thresholds
    use. A later line wins a repeated (key, step): MLflow keeps one point per step."""
    points: dict[tuple[str, int], Point] = {}

    def add(key: str, value: Any, step: int, timestamp_ms: int) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            points[key, step] = Point(key, float(value), step, timestamp_ms)

    last_step = 0
    for line in metrics.steps:
        values = line.model_dump(exclude={"step"})
        elapsed = line.elapsed_s if line.elapsed_s is not None and math.isfinite(line.elapsed_s) else 0.0
        at = start_ms + int(elapsed * 1000)
        for key, value in values.items():
            add(key, value, line.step, at)
        last_step = max(last_step, line.step)
    if metrics.final is not None:
        final_step = metrics.final.step if metrics.final.step is not None else last_step
        for key, value in metrics.final.model_dump(exclude={"final", "step"}).items():
            add(f"train.{key}", value, final_step, start_ms)
    if summary is not None:
        add("eval.primary_score", summary.primary_score, 0, start_ms)
        add("eval.n_items", summary.n_items, 0, start_ms)
        add("eval.n_scored", summary.n_scored, 0, start_ms)
        for key, value in summary.totals.model_dump().items():
            add(f"eval.totals.{key}", value, 0, start_ms)
    return list(points.values())


def _tags(folder: Path, milestone: str, run: Run, manifest: evidence.Manifest | None,
          summary: evidence.EvalSummary | None) -> dict[str, str]:
    tags = {
        "mlflow.runName": run.id,
        TAG_RUN_ID: run.id,
        "tunix_rt.milestone": milestone,
        "tunix_rt.kind": manifest.kind if manifest else run.kind,
        "tunix_rt.plugin": f"{manifest.plugin.name} {manifest.plugin.version}" if manifest else run.plugin,
        "tunix_rt.evidence_path": run.path,
        "tunix_rt.evidence_sha256": evidence.sha256_file(folder / evidence.ARTIFACTS),
    }
    if manifest is not None and manifest.git.sha:
        tags["tunix_rt.git_commit"] = manifest.git.sha
        tags["mlflow.source.git.commit"] = manifest.git.sha
        tags["tunix_rt.git_dirty"] = "true" if manifest.git.dirty else "false"
    if summary is not None:
        tags["tunix_rt.primary_metric"] = summary.primary_metric
    return tags


# --- sync: a RunRecord into its MLflow run ----------------------------------------------------------------


def _client(uri: str) -> MlflowClient:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MissingDependency("mlflow", extra="mlflow") from None
    return MlflowClient(tracking_uri=uri)


def _mlflow_error() -> type[Exception]:
    """What a failing or unreachable server raises (MLflow wraps connection errors in it)."""
    from mlflow.exceptions import MlflowException

    return MlflowException


def _experiment_id(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name)
    if found.lifecycle_stage != "active":
        raise TunixError(f"MLflow experiment {name!r} is deleted: restore it or pass --experiment NAME")
    return found.experiment_id


def sync_run(client: MlflowClient, experiment_id: str, record: RunRecord) -> Exported:
    """Creates the MLflow run of `record`, or finds it by its run-id tag and adds only what it lacks."""
    from mlflow.entities import Metric, Param, RunTag

    found = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_RUN_ID}` = '{record.run_id}'",
                               order_by=["attributes.start_time ASC"], max_results=1)  # run ids need no quoting
    action: Literal["created", "updated"]
    if found:
        mlflow_run, action = found[0], "updated"
    else:
        mlflow_run, action = client.create_run(experiment_id, start_time=record.start_ms, tags=record.tags,
                                               run_name=record.run_id), "created"
    run_id = mlflow_run.info.run_id
    params = [Param(k, v) for k, v in record.params.items() if k not in mlflow_run.data.params]
    logged = _logged_steps(client, run_id, {p.key for p in record.points} & set(mlflow_run.data.metrics))
    metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in record.points
               if p.step not in logged.get(p.key, ())]
    for chunk in _chunks(params, _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks([RunTag(k, v) for k, v in record.tags.items()], _PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=chunk)
    for chunk in _chunks(metrics, _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=chunk)
    for item in record.files:
        client.log_artifact(run_id, str(item.path), artifact_path=item.folder)
    if record.status is not None:
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow writes a "View run" link to stdout here
            client.set_terminated(run_id, status=record.status, end_time=record.end_ms)
    return Exported(record.run_id, record.milestone, action, mlflow_run_id=run_id, params_logged=len(params),
                    metrics_logged=len(metrics), artifacts=len(record.files))


def _logged_steps(client: MlflowClient, run_id: str, keys: set[str]) -> dict[str, set[int]]:
    return {key: {m.step for m in client.get_metric_history(run_id, key)} for key in keys}


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
