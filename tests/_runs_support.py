"""Helpers for the run tests: a fake third-party plugin installed through entry points, and a started milestone."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

from tunix_rt import cli

RUNS_DATA = Path(__file__).resolve().parent / "data" / "runs"

FAKE_PLUGIN = textwrap.dedent(
    '''
    """A third-party plugin as someone else would ship it: a class under the tunix_rt.plugins entry point."""
    import hashlib
    from pathlib import Path

    from pydantic import BaseModel, ConfigDict

    from tunix_rt.errors import TunixError
    from tunix_rt.plugins import Prepared, RunResult


    class EchoConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        message: str
        data: str
        behaviour: str = "ok"  # ok | crash | interrupt


    class EchoPlugin:
        name = "echo"
        version = "9.9.9"
        capabilities = ("train",)

        def config_schema(self):
            return EchoConfig.model_json_schema()

        def validate_config(self, kind, raw, base):
            try:
                config = EchoConfig.model_validate(raw)
            except Exception as exc:
                raise TunixError(f"echo config: {exc.errors()[0]['loc']}") from exc
            path = base / config.data
            if not path.is_file():
                raise TunixError(f"echo config: data {config.data} missing")
            config.data = str(path)
            return config

        def prepare(self, kind, config):
            raw = Path(config.data).read_bytes()
            return Prepared(facts={
                "datasets": [{"role": "train", "path": config.data, "sha256": hashlib.sha256(raw).hexdigest(),
                              "records": len(raw.splitlines())}],
                "model": {"source": "local", "local_path": config.data},
                "seed": 1, "device": "cpu", "dtype": "float32"})

        def train(self, ctx, config, prepared):
            ctx.log(f"echo: {config.message}")
            (ctx.run_dir / "echo.txt").write_text(config.message + "\\n", encoding="utf-8")
            if config.behaviour == "crash":
                raise RuntimeError("the echo plugin crashed")
            if config.behaviour == "interrupt":
                raise KeyboardInterrupt
            return RunResult(metrics={"steps": 1, "echoed": config.message}, results=["Steps: 1", f"Echo: {config.message}"])

        def evaluate(self, ctx, config, prepared):
            raise TunixError("echo cannot evaluate")
    '''
)


def install_fake_plugin(site: Path, monkeypatch) -> None:
    """Writes a module and its dist-info (entry_points.txt) into `site` and puts it on sys.path."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "fake_echo_plugin.py").write_text(FAKE_PLUGIN, encoding="utf-8")
    info = site / "fake_echo_plugin-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-echo-plugin\nVersion: 9.9.9\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[tunix_rt.plugins]\necho = fake_echo_plugin:EchoPlugin\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop("fake_echo_plugin", None)


def start_milestone(root: Path, milestone: str = "M44") -> None:
    assert cli.run(["start", milestone, "--title", "Runs"]) == 0


def copy_fixtures(root: Path) -> Path:
    """tests/data/runs copied into the project as data/ (configs refer to files beside them)."""
    target = root / "data"
    shutil.copytree(RUNS_DATA, target)
    return target


def tree(root: Path) -> set[str]:
    """Every path under the root except .git internals (to prove nothing was written)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if ".git" not in p.relative_to(root).parts}
