"""The plugin interface (a small typed protocol) and its discovery through the `tunix_rt.plugins` entry points.

A plugin is a class registered under the entry-point group `tunix_rt.plugins`; the core instantiates it
with no arguments. The core validates a run's config through the plugin (cheap, no heavy imports),
lets it `prepare` (load and check data; heavy imports allowed, no model loaded, nothing written),
and only then creates the evidence folder and hands the plugin a `RunContext`. Setting
`TUNIX_RT_NO_PLUGINS=1` switches third-party plugins off; the project's own plugins (the
`tunix-rt` distribution) always load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from tunix_rt.errors import TunixError

GROUP = "tunix_rt.plugins"
OWN_DISTRIBUTION = "tunix-rt"
Kind = Literal["train", "eval"]


@dataclass
class Prepared:
    """What `prepare` found out before anything is written.

    `facts` go into the run manifest (keys: datasets, model, seed, device, dtype, world_size);
    `state` is private to the plugin and comes back to `train`/`evaluate` unchanged.
    """

    facts: dict[str, Any]
    state: Any = None


@dataclass
class RunResult:
    """What a finished run reports: headline metrics (the ledger's `Run.metrics`) and Results lines."""

    metrics: dict[str, Any] = field(default_factory=dict)
    results: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything the core hands a plugin for one run.

    Only rank 0 writes: `run_dir` exists on every rank, but `log` and the evidence files are
    rank 0's. `progress(step, total, **fields)` redraws a bar on a terminal and is silent otherwise.
    `environment` collects facts the plugin learns while running (torch version, GPU) for
    `env_snapshot.json`.
    """

    project_root: Path
    milestone: str
    run_id: str
    run_dir: Path
    kind: Kind
    command: str
    rank: int = 0
    world_size: int = 1
    log: Callable[[str], None] = print
    progress: Callable[..., None] = lambda step, total, **fields: None
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.project_root)).as_posix()


@runtime_checkable
class Plugin(Protocol):
    """The interface every plugin implements."""

    name: str
    version: str
    capabilities: tuple[str, ...]  # a subset of ("train", "eval")

    def config_schema(self) -> dict[str, Any]:
        """JSON schema of the config file (pydantic's `model_json_schema()`)."""
        ...

    def validate_config(self, kind: Kind, raw: dict[str, Any], base: Path) -> BaseModel:
        """Checks a parsed config (relative paths resolve against `base`); cheap, no heavy imports.

        Raises TunixError naming the offending key.
        """
        ...

    def prepare(self, kind: Kind, config: BaseModel) -> Prepared:
        """Loads and checks the data (may import heavy libraries); loads no model and writes nothing."""
        ...

    def train(self, ctx: RunContext, config: BaseModel, prepared: Prepared) -> RunResult: ...

    def evaluate(self, ctx: RunContext, config: BaseModel, prepared: Prepared) -> RunResult: ...


@dataclass
class PluginInfo:
    """One installed plugin as `milestone plugins` lists it."""

    name: str
    version: str
    capabilities: list[str]
    distribution: str | None
    entry_point: str
    error: str | None = None


def _entry_points() -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=GROUP)
    third_party_off = os.environ.get("TUNIX_RT_NO_PLUGINS", "") not in ("", "0")
    unique: dict[str, metadata.EntryPoint] = {}
    for ep in found:
        dist = ep.dist.name if ep.dist is not None else None
        if third_party_off and dist != OWN_DISTRIBUTION:
            continue
        unique.setdefault(ep.name, ep)  # the first on sys.path wins, as for imports
    return sorted(unique.values(), key=lambda ep: ep.name)


def _instantiate(ep: metadata.EntryPoint) -> Plugin:
    try:
        obj = ep.load()
        plugin = obj() if isinstance(obj, type) else obj
    except Exception as exc:  # a broken third-party plugin must not take the CLI down
        raise TunixError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
    if not isinstance(plugin, Plugin):
        raise TunixError(f"plugin {ep.name!r} ({ep.value}) does not implement the tunix_rt plugin interface")
    return plugin


def names() -> list[str]:
    return [ep.name for ep in _entry_points()]


def load(name: str) -> Plugin:
    """The plugin registered under `name`; an unknown name lists the installed ones."""
    for ep in _entry_points():
        if ep.name == name:
            return _instantiate(ep)
    installed = ", ".join(names()) or "none"
    raise TunixError(f"unknown plugin {name!r} (installed: {installed})")


def installed() -> list[PluginInfo]:
    """Every plugin with version and capabilities; one that fails to load is listed with its error."""
    infos = []
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else None
        try:
            plugin = _instantiate(ep)
        except TunixError as exc:
            infos.append(PluginInfo(ep.name, "?", [], dist, ep.value, error=str(exc)))
            continue
        infos.append(PluginInfo(plugin.name, plugin.version, list(plugin.capabilities), dist, ep.value))
    return infos
