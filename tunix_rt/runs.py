"""The `milestone run train|eval` use case: validate everything, then allocate the evidence folder, run the plugin,
record the run.

Order matters: the config, the data and the run id are all checked (exit 2, nothing written) before
the folder exists. Once it exists the run always ends with a manifest, `artifacts.json`, a closed
ledger entry and one run event, whether it completed, failed or was interrupted (Ctrl-C, SIGTERM).
Under `torchrun` every rank runs this; rank 0 allocates the folder and tells the others its id
through a file in `.git/tunix-rt/`, and only rank 0 writes evidence and ledger events.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tunix_rt import clock, evidence
from tunix_rt.errors import TunixError, WorkFailed
from tunix_rt.models import Run
from tunix_rt.plugins import Kind, Plugin, Prepared, RunContext, RunResult
from tunix_rt.project import Project

TOOL = {"train": "milestone run train", "eval": "milestone run eval"}
LOG_FILE = {"train": "training_log.txt", "eval": "eval_log.txt"}
_RENDEZVOUS_TIMEOUT_S = 300.0


class Interrupted(WorkFailed):
    """Ctrl-C or SIGTERM: the run is marked interrupted and what was written is kept."""

    exit_code = 130


@dataclass
class Outcome:
    run: Run
    run_dir: Path
    manifest: evidence.Manifest | None = None
    results: list[str] = field(default_factory=list)


# --- config files ------------------------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    """A YAML mapping; syntax errors name the line."""
    import yaml

    if not path.is_file():
        raise TunixError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TunixError(f"{path}: not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TunixError(f"{path}:{where} invalid YAML: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TunixError(f"{path}: the config must be a YAML mapping, not {type(data).__name__}")
    return data


def dump_config(config: Any, project: Project | None = None) -> str:
    """The resolved config as YAML, paths inside the repository made relative."""
    import yaml

    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    if project is not None:
        data = relativise(project, data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def config_defaults(config: Any) -> dict[str, Any] | None:
    """The defaults of a pydantic config class, as a mapping (required fields left out); None for other configs.

    Written beside `config.yaml` so the summary can show only what a run changed, without loading the plugin.
    """
    from pydantic import BaseModel

    def walk(model: type[BaseModel]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            if info.is_required():
                annotation = info.annotation
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    found[name] = walk(annotation)
                continue
            value = info.get_default(call_default_factory=True)
            found[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        return found

    if not isinstance(config, BaseModel):
        return None
    import json

    return json.loads(json.dumps(walk(type(config)), default=str))


def relativise(project: Project, value: Any) -> Any:
    """Absolute paths inside the repository become relative with '/' (how every path is stored)."""
    if isinstance(value, dict):
        return {k: relativise(project, v) for k, v in value.items()}
    if isinstance(value, list):
        return [relativise(project, v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return _stored_path(project, Path(value))
    return value


# --- distributed ranks ---------------------------------------------------------------------------


def rank_and_world() -> tuple[int, int]:
    """From the variables torchrun sets; a plain process is rank 0 of 1."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise TunixError(f"RANK/WORLD_SIZE are not integers: {exc}") from exc


def _rendezvous_file(project: Project) -> Path:
    # Workers of one torchrun launch share its agent process (their parent) and the master port.
    key = f"{os.getppid()}-{os.environ.get('MASTER_PORT', '0')}-{os.environ.get('TORCHELASTIC_RUN_ID', 'none')}"
    return project.state_dir / "rendezvous" / f"{key}.json"


def _publish(project: Project, payload: dict[str, Any]) -> None:
    path = _rendezvous_file(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _await_run_id(project: Project) -> str:
    path = _rendezvous_file(project)
    deadline = time.monotonic() + _RENDEZVOUS_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        if "error" in payload:
            raise TunixError(f"rank 0 refused the run: {payload['error']}")
        return payload["run_id"]
    raise TunixError(f"rank 0 did not announce a run id within {_RENDEZVOUS_TIMEOUT_S:.0f} s")


# --- terminal output ------------------------------------------------------------------------------


class Console:
    """Log lines go to the run's log file and stderr; a progress bar is drawn only on a terminal."""

    def __init__(self, log_path: Path | None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.handle = log_path.open("a", encoding="utf-8", newline="\n") if log_path is not None else None
        self._bar_shown = False
        self._last_draw = 0.0

    def log(self, line: str) -> None:
        from tunix_rt.redact import redact

        line, _ = redact(line.replace("\r\n", "\n").rstrip("\n"))  # the log file is evidence too
        if self.handle is not None:
            self.handle.write(line + "\n")
            self.handle.flush()
        if self._bar_shown:
            self.stream.write("\r\x1b[2K")
            self._bar_shown = False
        self.stream.write(line + "\n")
        self.stream.flush()

    def progress(self, step: int, total: int, **fields: Any) -> None:
        if not self.tty:
            return  # plain logs only: the plugin's log lines carry the numbers
        now = time.monotonic()
        if now - self._last_draw < 0.1 and step < total:
            return
        self._last_draw = now
        width = 24
        done = int(width * step / total) if total else 0
        parts = [f"[{'#' * done}{'.' * (width - done)}] {step}/{total}"]
        for key, value in fields.items():
            if key == "eta" and isinstance(value, (int, float)):
                value = f"{int(value) // 60}:{int(value) % 60:02d}"
            elif isinstance(value, float):
                value = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"  # 23,580 tok/s, loss 0.6295
            parts.append(f"{key.replace('_s', '/s') if key.endswith('_s') else key} {value}")
        self.stream.write("\r\x1b[2K" + "  ".join(parts))
        self.stream.flush()
        self._bar_shown = True

    def close(self) -> None:
        if self._bar_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._bar_shown = False
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _interrupt_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def command_line(argv: list[str] | None = None) -> str:
    """The exact command, program name first (secrets redacted)."""
    from tunix_rt.redact import redact

    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = Path(args[0]).name
    text, _ = redact(" ".join(shlex.quote(a) for a in args))
    return text


# --- the use case ----------------------------------------------------------------------------------


def validate(project: Project, milestone: str | None, kind: Kind, plugin_name: str, config_path: Path | None,
             run_id: str | None, raw: dict[str, Any] | None = None):
    """Every check that needs no model: milestone, plugin, config, data, run id. Writes nothing.

    `raw` is a config given as a mapping (a command such as `eval score` builds it from its options);
    then `config_path` is None and the run's own `config.yaml` is what the manifest points at.
    """
    from tunix_rt import milestones, plugins

    mid = project.resolve_milestone(milestone)
    state = milestones.load(project, mid)
    if state.status == "closed":
        raise TunixError(f"milestone {mid} is closed; start a new milestone for more runs")
    plugin = plugins.load(plugin_name)
    if kind not in plugin.capabilities:
        raise TunixError(f"plugin {plugin.name!r} cannot {kind} (capabilities: {', '.join(plugin.capabilities)})")
    if raw is None:
        assert config_path is not None
        config_path = config_path if config_path.is_absolute() else (Path.cwd() / config_path)
        raw = read_config(config_path)
    config = plugin.validate_config(kind, raw, config_path.parent if config_path is not None else Path.cwd())
    if run_id is not None:
        evidence.check_new_run(project, run_id)
    project.check_inside(project.runs_dir)
    return mid, plugin, config_path, config


def run(
    project: Project,
    milestone: str | None,
    kind: Kind,
    plugin_name: str,
    config_path: Path | None,
    run_id: str | None = None,
    *,
    command: str | None = None,
    stream: TextIO | None = None,
    raw: dict[str, Any] | None = None,
) -> Outcome:
    """Runs a plugin's training or evaluation into a new evidence folder and records it in the ledger."""
    rank, world = rank_and_world()
    try:
        mid, plugin, config_path, config = validate(project, milestone, kind, plugin_name, config_path, run_id, raw)
        prepared = plugin.prepare(kind, config)
    except TunixError as exc:
        if rank == 0 and world > 1:
            _publish(project, {"error": str(exc)})
        raise
    command = command or command_line()
    if rank != 0:
        run_id = _await_run_id(project)
        run_dir = project.runs_dir / run_id
        ctx = RunContext(project.root, mid, run_id, run_dir, kind, command, rank=rank, world_size=world,
                         log=lambda line: None)
        _call(plugin, ctx, config, prepared)
        return Outcome(Run(id=run_id, kind=kind, plugin=plugin.name, path=project.relative(run_dir),
                           status="completed", started=clock.stamp()), run_dir)
    return _run_main(project, mid, kind, plugin, config_path, config, prepared, run_id, command, world, stream)


def _call(plugin: Plugin, ctx: RunContext, config: Any, prepared: Prepared) -> RunResult:
    return plugin.train(ctx, config, prepared) if ctx.kind == "train" else plugin.evaluate(ctx, config, prepared)


def _run_main(project, mid, kind, plugin, config_path, config, prepared, run_id, command, world, stream) -> Outcome:
    from tunix_rt import milestones, vcs

    repo = vcs.open_repo(project.root)
    git_ref = evidence.GitRef(sha=vcs.head_sha(repo), dirty=vcs.is_dirty(repo))
    config_ref = (evidence.FileRef(path=_stored_path(project, config_path), sha256=evidence.sha256_file(config_path))
                  if config_path is not None else None)
    try:
        run_id, run_dir = evidence.allocate(project, mid, run_id)
    except TunixError as exc:
        if world > 1:
            _publish(project, {"error": str(exc)})
        raise
    if world > 1:
        _publish(project, {"run_id": run_id})
    started_at = clock.stamp()
    t0 = time.monotonic()
    evidence.write_text(run_dir / evidence.CONFIG, dump_config(config, project))
    if config_ref is None:  # a config given as options: the run's own copy is the config of record
        config_ref = evidence.FileRef(path=project.relative(run_dir / evidence.CONFIG),
                                      sha256=evidence.sha256_file(run_dir / evidence.CONFIG))
    defaults = config_defaults(config)
    if defaults is not None:
        evidence.write_text(run_dir / evidence.CONFIG_DEFAULTS, dump_config(defaults))
    rel_dir = project.relative(run_dir)
    entry = milestones.add_entry(
        project,
        mid,
        title=f"{'Train' if kind == 'train' else 'Evaluate'} with {plugin.name} ({run_id})",
        tools=[TOOL[kind]],
        purpose=f"{'Training' if kind == 'train' else 'Scored evaluation'} run {run_id},"
        " evidence written by the run itself",
        files=[rel_dir + "/", config_ref.path],
        status="in-progress",
        source="plugin",
    )
    console = Console(run_dir / LOG_FILE[kind], stream)
    ctx = RunContext(project.root, mid, run_id, run_dir, kind, command, rank=0, world_size=world,
                     log=console.log, progress=console.progress)
    status, error, result = "completed", None, RunResult()
    failure: BaseException | None = None
    previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        console.log(f"run {run_id}: {command}")
        result = _call(plugin, ctx, config, prepared)
    except KeyboardInterrupt as exc:
        status, error, failure = "interrupted", "INTERRUPTED", exc
        console.log("INTERRUPTED: the run was stopped; what was written is kept")
    except TunixError as exc:
        status, error, failure = "failed", str(exc), exc
        console.log(f"FAILED: {exc}")
    except Exception as exc:  # noqa: BLE001 - any crash still ends in evidence and a closed entry
        status, error, failure = "failed", f"{type(exc).__name__}: {exc}", exc
        console.log("FAILED:\n" + traceback.format_exc())
    finally:
        signal.signal(signal.SIGTERM, previous)
        console.close()
        if world > 1:
            _rendezvous_file(project).unlink(missing_ok=True)
    ended_at = clock.stamp()
    duration = time.monotonic() - t0
    manifest = _finish_evidence(project, mid, kind, plugin, run_id, run_dir, command, git_ref, config_ref, prepared,
                                world, started_at, ended_at, duration, status, error, ctx, result)
    results = list(result.results) or [f"Runtime: {duration:.1f} s"]
    ledger_status = "completed" if status == "completed" else "failed"
    status_text = "INTERRUPTED" if status == "interrupted" else (f"FAILED — {error.splitlines()[0]}" if error else None)
    milestones.update_entry(project, mid, entry.number, status=ledger_status, status_text=status_text,
                            sections=[("Results", line) for line in results], source="plugin")
    record = Run(id=run_id, kind=kind, plugin=plugin.name, path=rel_dir, config=config_ref.path, status=status,
                 started=started_at, ended=ended_at, entry=entry.number, metrics=result.metrics)
    milestones.record_run(project, mid, record)
    if status == "interrupted":
        raise Interrupted(f"run {run_id} interrupted; evidence kept in {rel_dir}") from failure
    if status == "failed":
        if isinstance(failure, TunixError):
            raise failure
        reason = (error or "no error text").splitlines()[0]
        raise WorkFailed(f"run {run_id} failed: {reason} (see {rel_dir}/{LOG_FILE[kind]})") from failure
    return Outcome(record, run_dir, manifest, results)


def _stored_path(project: Project, path: Path) -> str:
    try:
        project.check_inside(path)
    except TunixError:
        return path.resolve().as_posix()
    return project.relative(path.resolve())


def _finish_evidence(project, mid, kind, plugin, run_id, run_dir, command, git_ref, config_ref, prepared, world,
                     started_at, ended_at, duration, status, error, ctx, result) -> evidence.Manifest:
    facts = relativise(project, prepared.facts)
    env = dict(ctx.environment)
    env.update(result.environment)
    evidence.write_json(run_dir / evidence.ENV_SNAPSHOT, evidence.environment_snapshot(env))
    manifest = evidence.Manifest(
        run_id=run_id,
        milestone=mid,
        kind=kind,
        plugin=evidence.PluginRef(name=plugin.name, version=plugin.version),
        command=command,
        git=git_ref,
        config=config_ref,
        datasets=facts["datasets"],
        model=facts["model"],
        seed=facts["seed"],
        device=facts["device"],
        dtype=facts["dtype"],
        world_size=world,
        started=started_at,
        ended=ended_at,
        duration_s=round(duration, 3),
        status=status,
        error=error,
    )
    evidence.write_json(run_dir / evidence.MANIFEST, manifest.model_dump(mode="json"))
    evidence.write_artifacts(project, run_id, run_dir)
    return manifest
