"""Run evidence folders: allocation, the run manifest schema, env snapshots, `artifacts.json` hashing and `verify`.

A run folder is `submission_runs/<mNN>_v<K>/`, allocated with an atomic `mkdir`. Every file the core
writes here is final on first write (UTF-8, LF, a final newline) so pre-commit hooks have nothing
to rewrite. The manifest schema refuses placeholders: the hand-run project committed `<PENDING>`
and nulls that passed tests checking only that keys existed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tunix_rt.errors import TunixError
from tunix_rt.ids import check_run_id, run_prefix

# The evidence contract: the file names of a run folder. Plugins write through the models below and
# `close` reads through them, so a key is named in one place only.
MANIFEST = "run_manifest.json"
ARTIFACTS = "artifacts.json"
ENV_SNAPSHOT = "env_snapshot.json"
CONFIG = "config.yaml"
CONFIG_DEFAULTS = "config_defaults.yaml"  # the plugin's defaults: the summary shows only what a run changed
METRICS = "metrics.jsonl"
EVAL_SUMMARY = "eval_summary.json"
PREDICTIONS = "predictions.jsonl"
LOSS_CURVE = "loss_curve.png"
TRAINING_LOG = "training_log.txt"
EVAL_LOG = "eval_log.txt"
RUN_FILES = (MANIFEST, CONFIG, CONFIG_DEFAULTS, ENV_SNAPSHOT, TRAINING_LOG, EVAL_LOG, METRICS, EVAL_SUMMARY,
             PREDICTIONS, LOSS_CURVE, ARTIFACTS)

_PLACEHOLDER = re.compile(
    r"^\s*$|<[^<>]*>|^\s*(todo|tbd|tba|pending|n/?a|none|null|unknown|fixme|xxx|\?+|paste .*)\s*$", re.IGNORECASE
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _reject_placeholders(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        if _PLACEHOLDER.search(value):
            raise ValueError(f"{where or 'value'} holds a placeholder: {value!r}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_placeholders(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_placeholders(item, f"{where}[{i}]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginRef(_Strict):
    name: str
    version: str


class GitRef(_Strict):
    sha: str | None = Field(description="HEAD when the run started; null only in a repository without commits.")
    dirty: bool = Field(description="Uncommitted changes existed when the run started.")


class FileRef(_Strict):
    path: str = Field(description="Relative to the repository root, '/' separators.")
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            raise ValueError("not a sha256 hex digest")
        return value


class DatasetRef(FileRef):
    role: Literal["train", "eval"]
    records: int = Field(ge=0)


class ModelRef(_Strict):
    source: Literal["hub", "local", "tiny", "external"]  # external: predictions made elsewhere, `id` names the model
    id: str | None = Field(None, description="Hub id, for a hub model.")
    revision: str | None = None
    local_path: str | None = Field(
        None, description="Folder the weights were loaded from, relative when inside the repo."
    )
    arch: str | None = Field(None, description="Architecture of a tiny random-init model.")

    @model_validator(mode="after")
    def _named(self) -> ModelRef:
        if not (self.id or self.local_path):
            raise ValueError("model needs an id or a local_path")
        return self


class Manifest(_Strict):
    """`run_manifest.json`: the facts of one run, written by the run itself."""

    schema_version: Literal[1] = 1
    run_id: str
    milestone: str
    kind: Literal["train", "eval"]
    plugin: PluginRef
    command: str
    git: GitRef
    config: FileRef
    datasets: list[DatasetRef] = Field(min_length=1)
    model: ModelRef
    seed: int
    device: str
    dtype: str
    world_size: int = Field(ge=1)
    started: str
    ended: str
    duration_s: float = Field(ge=0)
    status: Literal["completed", "failed", "interrupted"]
    error: str | None = Field(None, description="Why a failed run failed (one line).")

    @model_validator(mode="before")
    @classmethod
    def _no_placeholders(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _reject_placeholders({k: v for k, v in data.items() if k != "error"})
        return data


class Artifact(_Strict):
    path: str
    bytes: int
    sha256: str
    tracked: bool = Field(description="False when git ignores the file (weights); such files are not committed.")


class Artifacts(_Strict):
    schema_version: Literal[1] = 1
    run_id: str
    files: list[Artifact]


# --- writing ---------------------------------------------------------------------------------


def write_text(path: Path, text: str) -> None:
    """UTF-8, LF, exactly one final newline (what hooks such as end-of-file-fixer expect), and
    secrets redacted: a token in a config, a prompt or a model's output never lands in evidence."""
    from tunix_rt.redact import redact

    text, _ = redact(text.replace("\r\n", "\n").rstrip("\n") + "\n")
    path.write_text(text, encoding="utf-8", newline="\n")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- run folders -----------------------------------------------------------------------------


def _check_folder(project, run_dir: Path) -> None:
    project.check_inside(run_dir.parent)
    if run_dir.parent.resolve() != project.runs_dir.resolve():
        raise TunixError(f"run folder {run_dir} is not directly under {project.settings.runs_dir}/")


def check_new_run(project, run_id: str) -> Path:
    """The folder an explicit `--run` id would get; refused when it escapes the repo or exists."""
    check_run_id(run_id)
    run_dir = project.runs_dir / run_id
    project.check_inside(run_dir)
    _check_folder(project, run_dir)
    if run_dir.exists():
        raise TunixError(f"run folder {project.relative(run_dir)} already exists: pick another --run or leave it out")
    return run_dir


def next_run_id(project, milestone_id: str) -> str:
    """`m44_v<K>` with K one more than the highest existing version (v1 when there is none)."""
    prefix = run_prefix(milestone_id)
    pattern = re.compile(rf"{re.escape(prefix)}_v(\d+)")
    highest = 0
    if project.runs_dir.is_dir():
        for child in project.runs_dir.iterdir():
            match = pattern.fullmatch(child.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return f"{prefix}_v{highest + 1}"


def allocate(project, milestone_id: str, run_id: str | None) -> tuple[str, Path]:
    """Creates the run folder atomically (mkdir fails if another process took the id) and returns it."""
    project.runs_dir.mkdir(parents=True, exist_ok=True)
    project.check_inside(project.runs_dir)
    if run_id is not None:
        run_dir = check_new_run(project, run_id)
        try:
            run_dir.mkdir()
        except FileExistsError as exc:
            raise TunixError(f"run folder {project.relative(run_dir)} already exists") from exc
        return run_id, run_dir
    for _ in range(1000):
        candidate = next_run_id(project, milestone_id)
        run_dir = project.runs_dir / candidate
        try:
            run_dir.mkdir()
            return candidate, run_dir
        except FileExistsError:
            continue  # a concurrent run took this version: look again
    raise TunixError(f"could not allocate a run folder under {project.settings.runs_dir}")


def resolve_run(project, run: str) -> Path:
    """A run id (`m44_v1`) or a path to a run folder."""
    candidate = Path(run)
    if candidate.is_dir() and (candidate / ARTIFACTS).exists():
        run_dir = candidate.resolve()
    else:
        check_run_id(run)
        run_dir = project.runs_dir / run
    project.check_inside(run_dir)
    if not (run_dir / ARTIFACTS).is_file():
        raise TunixError(f"{project.relative(run_dir)} is not a run folder (no {ARTIFACTS})")
    return run_dir


# --- environment ----------------------------------------------------------------------------


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment_snapshot(extra: dict[str, Any]) -> dict[str, Any]:
    """Python, platform, package versions (from metadata), CPU, threads; `extra` adds the plugin's facts."""
    from tunix_rt.environment import TRACKED_PACKAGES, package_version

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    snapshot: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "packages": {name: package_version(name) for name in TRACKED_PACKAGES if package_version(name)},
    }
    snapshot.update(extra)
    return snapshot


# --- artifacts and verification ---------------------------------------------------------------


def _files(run_dir: Path) -> list[Path]:
    return sorted(
        (p for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink() and p.name != ARTIFACTS),
        key=lambda p: p.relative_to(run_dir).as_posix(),
    )


def tracked_files(project, run_dir: Path) -> list[Path]:
    """The files of a run folder that git would commit, `artifacts.json` included: the evidence without its
    weights (what an export sends elsewhere; ignored files stay as private as they are in git)."""
    from tunix_rt import vcs

    paths = [*_files(run_dir), *([run_dir / ARTIFACTS] if (run_dir / ARTIFACTS).is_file() else [])]
    ignored = vcs.ignored_paths(vcs.open_repo(project.root), [project.relative(p) for p in paths])
    kept = [p for p in paths if project.relative(p) not in ignored]
    return sorted(kept, key=lambda p: p.relative_to(run_dir).as_posix())


def write_artifacts(project, run_id: str, run_dir: Path) -> Artifacts:
    """Hashes every file of the run folder and records whether git would track it."""
    from tunix_rt import vcs

    paths = _files(run_dir)
    relative = [project.relative(p) for p in paths]
    ignored = vcs.ignored_paths(vcs.open_repo(project.root), relative)
    artifacts = Artifacts(
        run_id=run_id,
        files=[
            Artifact(path=rel, bytes=p.stat().st_size, sha256=sha256_file(p), tracked=rel not in ignored)
            for p, rel in zip(paths, relative)
        ],
    )
    write_json(run_dir / ARTIFACTS, artifacts.model_dump(mode="json"))
    return artifacts


@dataclass
class VerifyReport:
    run_id: str
    path: str
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    absent_ignored: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    manifest_error: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.manifest_error)

    @property
    def problems(self) -> list[str]:
        """What fails, a line each, as `milestone verify RUN` and the report show it."""
        return ([f"changed: {p}" for p in self.changed] + [f"missing: {p}" for p in self.missing]
                + ([f"manifest: {self.manifest_error}"] if self.manifest_error else []))


def load_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_bytes())  # bytes: invalid UTF-8 is a validation error
    except OSError as exc:
        raise TunixError(f"{path}: cannot read the run manifest: {exc.strerror}") from exc
    except ValidationError as exc:
        raise TunixError(f"{path}: invalid run manifest: {str(exc).splitlines()[0]}") from exc


def verify(project, run: str) -> VerifyReport:
    """Re-hashes every file listed in `artifacts.json` and re-validates the manifest."""
    run_dir = resolve_run(project, run)
    listing = project.relative(run_dir / ARTIFACTS)
    try:
        artifacts = Artifacts.model_validate_json((run_dir / ARTIFACTS).read_bytes())  # bytes: see load_manifest
    except OSError as exc:
        raise TunixError(f"cannot read {listing}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise TunixError(f"{listing} is not valid: {exc.errors()[0]['msg']}") from exc
    report = VerifyReport(run_id=artifacts.run_id, path=project.relative(run_dir))
    folder = run_dir.resolve()
    for item in artifacts.files:  # a tampered list must not make verify read files elsewhere
        try:
            target = (project.root / item.path).resolve()
            inside = not Path(item.path).is_absolute() and folder in target.parents
            target.exists()  # raises for a name longer than the file system allows
        except (OSError, ValueError):  # a NUL byte, a name longer than the file system allows
            raise TunixError(f"{listing} lists {item.path[:80]!r}, which is not a valid path") from None
        if not inside:
            raise TunixError(f"{listing} lists {item.path!r}, outside the run folder")
    listed = set()
    for item in artifacts.files:
        listed.add(item.path)
        path = project.root / item.path
        if not path.is_file():
            (report.missing if item.tracked else report.absent_ignored).append(item.path)
            continue
        report.checked += 1
        if path.stat().st_size != item.bytes or sha256_file(path) != item.sha256:
            report.changed.append(item.path)
    report.unlisted = [rel for rel in (project.relative(p) for p in _files(run_dir)) if rel not in listed]
    try:
        manifest = load_manifest(run_dir / MANIFEST)
        if manifest.run_id != artifacts.run_id:
            report.manifest_error = f"manifest run_id {manifest.run_id!r} != {artifacts.run_id!r}"
    except TunixError as exc:
        report.manifest_error = str(exc)
    return report


# --- the metrics and eval contract ---------------------------------------------------------------
# A plugin writes `metrics.jsonl` as per-step lines and one final line marked `"final": true`, and
# `eval_summary.json` as an `EvalSummary`. Unknown keys are kept (`extra="allow"`): a plugin may
# report more, but the keys below mean the same thing for every plugin, and only they can be named
# in an acceptance threshold.


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StepMetrics(_Open):
    """One per-step line of `metrics.jsonl`."""

    step: int
    epoch: float | None = None
    loss: float | None = Field(None, description="Mean loss per target token over the steps since the previous line.")
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_seen: int | None = None
    elapsed_s: float | None = None
    eval_loss: float | None = Field(None, description="Held-out loss, on the lines where it was measured.")


class FinalMetrics(_Open):
    """The last line of `metrics.jsonl`: the run's totals; `final` marks it so no reader guesses."""

    final: Literal[True] = True
    step: int | None = None
    epoch: float | None = None
    train_runtime: float | None = Field(None, description="Seconds spent in training steps.")
    train_samples_per_second: float | None = None
    train_steps_per_second: float | None = None
    train_tokens_per_second: float | None = Field(None, description="Non-pad tokens per second.")
    tokens_seen: int | None = None
    padding_fraction: float | None = None
    mfu: float | None = Field(None, description="Model FLOPs utilisation against the measured peak, 0..1.")
    train_loss: float | None = Field(None, description="Mean loss per target token over the whole run.")
    first_loss: float | None = None
    final_loss: float | None = Field(None, description="Loss of the last logged window.")
    eval_loss: float | None = Field(None, description="Last held-out loss.")


class ScoreTotals(_Open):
    """Counts and rates of one group of scored items."""

    n: int
    exact: int | None = None
    exact_rate: float | None = None
    normalised: int | None = None
    normalised_rate: float | None = None
    contains: int | None = None
    contains_rate: float | None = None


class EvalSetRef(_Open):
    path: str
    sha256: str
    n_items: int


class EvalSummary(_Open):
    """`eval_summary.json`: what a scored evaluation found."""

    run_id: str
    eval_set: EvalSetRef | None = None
    n_items: int
    n_scored: int
    primary_metric: str = Field(description="The `totals` key whose rate is `primary_score`.")
    primary_score: float
    totals: ScoreTotals
    by_section: dict[str, ScoreTotals] = Field(default_factory=dict)
    by_category: dict[str, ScoreTotals] = Field(default_factory=dict)
    by_difficulty: dict[str, ScoreTotals] = Field(default_factory=dict)
    predictions_path: str | None = None
    source_predictions: dict[str, str] | None = Field(None, description="A scored file made elsewhere: path, sha256.")
    unmatched_predictions: list[str] = Field(default_factory=list, description="Predictions that named no item.")

    def primary_label(self) -> str:
        """`normalised 24/52 (46.2 %)`: the one way the summary, master doc and commit name the score."""
        hits = getattr(self.totals, self.primary_metric, None)
        if isinstance(hits, int):
            return f"{self.primary_metric} {hits}/{self.totals.n} ({self.primary_score * 100:.1f} %)"
        return f"{self.primary_metric} {self.primary_score:.4g}"


@dataclass
class MetricsFile:
    """`metrics.jsonl` read back: the per-step lines and the final line (None while a run is unfinished)."""

    steps: list[StepMetrics]
    final: FinalMetrics | None


def read_json_objects(path: Path, max_lines: int | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL evidence file, in order; lines that are not objects are skipped, and an
    unreadable file reads as empty (the checks phase reports it through `verify`)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[:max_lines]
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_metrics(path: Path) -> MetricsFile:
    """Reads `metrics.jsonl` through the contract. Lines that are not JSON objects are skipped.

    Evidence written before the final line was marked (runs of tunix-rt 0.1) carried `train_runtime`
    on its final line and no `final` key: that one shape is still read as final.
    """
    steps: list[StepMetrics] = []
    final: FinalMetrics | None = None
    for record in read_json_objects(path):
        try:
            if record.get("final") is True or ("final" not in record and "train_runtime" in record):
                record["final"] = True
                final = FinalMetrics.model_validate(record)
            elif isinstance(record.get("step"), int):
                steps.append(StepMetrics.model_validate(record))
        except ValidationError:
            continue
    return MetricsFile(steps, final)


def read_eval_summary(path: Path) -> EvalSummary | None:
    """`eval_summary.json` through the contract, or None when absent or not of its shape."""
    try:
        return EvalSummary.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def write_eval_summary(path: Path, summary: EvalSummary) -> None:
    write_json(path, summary.model_dump(mode="json", exclude_none=True))
