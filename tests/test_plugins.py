"""Plugin discovery through entry points: the bundled torch-sft plugin and a third-party one installed in a temp site dir."""

from __future__ import annotations

import json

import pytest

from tunix_rt import plugins
from tunix_rt.errors import TunixError

from _runs_support import install_fake_plugin


def test_torch_sft_is_registered_by_the_projects_own_packaging():
    plugin = plugins.load("torch-sft")
    assert plugin.name == "torch-sft"
    assert set(plugin.capabilities) == {"train", "eval"}
    assert isinstance(plugin, plugins.Plugin)
    schema = plugin.config_schema()
    assert {"model", "data", "training", "eval", "seed"} <= set(schema["properties"])


def test_unknown_plugin_is_refused_and_lists_installed():
    with pytest.raises(TunixError, match="unknown plugin 'nope'.*torch-sft"):
        plugins.load("nope")


def test_third_party_plugin_found_through_entry_points(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path / "site", monkeypatch)
    assert "echo" in plugins.names()
    plugin = plugins.load("echo")
    assert (plugin.name, plugin.version, plugin.capabilities) == ("echo", "9.9.9", ("train",))
    info = {i.name: i for i in plugins.installed()}
    assert info["echo"].distribution == "fake-echo-plugin"
    assert info["torch-sft"].distribution == "tunix-rt"


def test_env_var_switches_third_party_plugins_off(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path / "site", monkeypatch)
    monkeypatch.setenv("TUNIX_RT_NO_PLUGINS", "1")
    assert plugins.names() == ["score", "torch-sft"]  # the distribution's own plugins


def test_plugins_command_json(tmp_path, monkeypatch, run_cli):
    install_fake_plugin(tmp_path / "site", monkeypatch)
    result = run_cli("plugins", "--json")
    assert result.code == 0, result
    listed = {p["name"]: p for p in json.loads(result.out)}
    assert listed["echo"]["version"] == "9.9.9"
    assert listed["torch-sft"]["capabilities"] == ["train", "eval"]
    text = run_cli("plugins")
    assert "echo 9.9.9  [train]" in text.out


def test_core_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, tunix_rt.cli, tunix_rt.runs, tunix_rt.evidence, tunix_rt.plugins;"
            "from tunix_rt import plugins; plugins.load('torch-sft').validate_config;"
            "print(any(m in sys.modules for m in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
