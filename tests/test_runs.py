"""The run use case through the CLI: evidence and ledger for completed, crashed and interrupted runs; a dozen bad inputs."""

from __future__ import annotations

import json
import time

import pytest

from tunix_rt import evidence, ledger

from _runs_support import copy_fixtures, install_fake_plugin, start_milestone, tree


@pytest.fixture
def echo_project(project, tmp_path, monkeypatch):
    install_fake_plugin(tmp_path / "site", monkeypatch)
    start_milestone(project.root)
    (project.root / "notes.txt").write_text("one\ntwo\n", encoding="utf-8")
    return project


def _echo_config(root, behaviour="ok"):
    path = root / f"echo_{behaviour}.yaml"
    path.write_text(f"message: hello\ndata: notes.txt\nbehaviour: {behaviour}\n", encoding="utf-8")
    return path.name


def _ledger_events(project):
    return ledger.read(project.ledger("M44"))


def test_completed_run_writes_evidence_and_ledger(echo_project, run_cli):
    project = echo_project
    result = run_cli("run", "train", "--plugin", "echo", "--config", _echo_config(project.root))
    assert result.code == 0, result
    folder = project.runs_dir / "m44_v1"
    names = {p.name for p in folder.iterdir()}
    assert {"run_manifest.json", "config.yaml", "env_snapshot.json", "training_log.txt", "artifacts.json", "echo.txt"} <= names
    manifest = evidence.load_manifest(folder / "run_manifest.json")
    assert (manifest.status, manifest.plugin.name, manifest.plugin.version) == ("completed", "echo", "9.9.9")
    assert manifest.datasets[0].path == "notes.txt" and manifest.config.path == "echo_ok.yaml"
    assert manifest.command.startswith("milestone run train --plugin echo")
    assert "echo: hello" in (folder / "training_log.txt").read_text(encoding="utf-8")
    assert evidence.verify(project, "m44_v1").ok
    shown = json.loads(run_cli("show", "--json").out)
    entry = shown["entries"][-1]
    assert entry["status"] == "completed" and entry["source"] == "plugin" and entry["tools"] == ["milestone run train"]
    assert "submission_runs/m44_v1/" in entry["files"]
    assert any(s["name"] == "Results" and "Steps: 1" in s["items"] for s in entry["sections"])
    (run,) = shown["runs"]
    assert run["id"] == "m44_v1" and run["status"] == "completed" and run["metrics"]["steps"] == 1
    assert run["entry"] == entry["number"]
    kinds = [type(e).__name__ for e in _ledger_events(project)]
    assert kinds.count("RunRecorded") == 1  # one run, one run event
    # the next run takes the next free version
    assert run_cli("run", "train", "--plugin", "echo", "--config", "echo_ok.yaml").code == 0
    assert (project.runs_dir / "m44_v2").is_dir()


def test_crashing_plugin_marks_the_run_failed_and_keeps_evidence(echo_project, run_cli):
    result = run_cli("run", "train", "--plugin", "echo", "--config", _echo_config(echo_project.root, "crash"))
    assert result.code == 1 and "crashed" in result.err
    folder = echo_project.runs_dir / "m44_v1"
    manifest = evidence.load_manifest(folder / "run_manifest.json")
    assert manifest.status == "failed" and "crashed" in manifest.error
    assert evidence.verify(echo_project, "m44_v1").ok
    entry = json.loads(run_cli("show", "--json").out)["entries"][-1]
    assert entry["status"] == "failed" and entry["status_text"].startswith("FAILED")


def test_interrupted_run_is_failed_with_interrupted_text(echo_project, run_cli):
    result = run_cli("run", "train", "--plugin", "echo", "--config", _echo_config(echo_project.root, "interrupt"))
    assert result.code == 130
    folder = echo_project.runs_dir / "m44_v1"
    assert evidence.load_manifest(folder / "run_manifest.json").status == "interrupted"
    assert (folder / "echo.txt").exists()  # what was written is kept
    shown = json.loads(run_cli("show", "--json").out)
    assert shown["entries"][-1]["status"] == "failed" and shown["entries"][-1]["status_text"] == "INTERRUPTED"
    assert shown["runs"][0]["status"] == "interrupted"


def test_capability_is_checked(echo_project, run_cli):
    result = run_cli("run", "eval", "--plugin", "echo", "--config", _echo_config(echo_project.root))
    assert result.code == 2 and "cannot eval" in result.err


BAD = [
    ("train", "torch-sft", "bad/yaml_syntax.yaml", None, "invalid YAML"),
    ("train", "torch-sft", "bad/unknown_key.yaml", None, "unknown key 'training.batch_szie'"),
    ("train", "torch-sft", "bad/wrong_type.yaml", None, "training.batch_size"),
    ("train", "torch-sft", "bad/missing_data.yaml", None, "data.train"),
    ("train", "torch-sft", "bad/truncated_line.yaml", None, "truncated.jsonl:6"),
    ("train", "torch-sft", "bad/no_target.yaml", None, "nothing to train on"),
    ("train", "torch-sft", "bad/no_target_in_window.yaml", None, "max_seq_length 8"),
    ("train", "torch-sft", "bad/unknown_arch.yaml", None, "model.tiny.arch"),
    ("train", "torch-sft", "bad/tiny_and_model_id.yaml", None, "not both"),
    ("eval", "torch-sft", "bad/eval_without_model.yaml", None, "model"),
    ("eval", "torch-sft", "bad/eval_with_tiny.yaml", None, "model.tiny"),
    ("train", "torch-sft", "bad/good_train.yaml", "../../escape", "invalid run id"),
    ("train", "nope", "bad/good_train.yaml", None, "unknown plugin 'nope'"),
    ("train", "torch-sft", "bad/does_not_exist.yaml", None, "does not exist"),
]


@pytest.mark.parametrize("kind,plugin,config,run_id,message", BAD, ids=[b[2].split("/")[-1] + "-" + b[1] for b in BAD])
def test_bad_inputs_exit_2_before_anything_is_written(project, run_cli, kind, plugin, config, run_id, message):
    start_milestone(project.root)
    copy_fixtures(project.root)
    before = tree(project.root)
    ledger_before = project.ledger("M44").read_bytes()
    args = ["run", kind, "--plugin", plugin, "--config", f"data/{config}"] + (["--run", run_id] if run_id else [])
    t0 = time.monotonic()
    result = run_cli(*args)
    assert result.code == 2, result
    assert message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert time.monotonic() - t0 < 20
    assert tree(project.root) == before  # no half-made evidence folder
    assert project.ledger("M44").read_bytes() == ledger_before
