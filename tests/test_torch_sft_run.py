"""torch-sft end to end: train then eval on the bundled data (the issue's two configs as written), verify and tamper,
a 2-process torchrun, SIGTERM, and the real corpus data when present."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
from _runs_support import start_milestone

from tunix_rt import evidence, ledger
from conftest import CORPUS, NEEDS_SHARED

MILESTONE = Path(sys.executable).with_name("milestone")
TORCHRUN = Path(sys.executable).with_name("torchrun")

TRAIN_YAML = """\
model: {tiny: {arch: gpt2}}
data: {train: data/train.jsonl, eval: data/eval_v2.jsonl}
training: {device: cpu, batch_size: 8, max_seq_length: 256, num_epochs: 1, max_steps: 60, learning_rate: 5.0e-4, logging_steps: 5}
seed: 0
"""
EVAL_YAML = """\
model: {model_id: submission_runs/m44_v1/final_model}
data: {eval: data/eval_v2.jsonl}
eval: {max_new_tokens: 48}
"""
EVIDENCE = {"run_manifest.json", "config.yaml", "env_snapshot.json", "training_log.txt", "metrics.jsonl",
            "loss_curve.png", "final_model", "artifacts.json", "eval_summary.json", "predictions.jsonl"}


def _bundled(root: Path, train_name="train.jsonl", eval_name="eval_v2.jsonl") -> tuple[Path, Path]:
    data = root / "data"
    data.mkdir(exist_ok=True)
    package = resources.files("tunix_rt.data")
    (data / train_name).write_bytes(package.joinpath("reasoning_train.jsonl").read_bytes())
    (data / eval_name).write_bytes(package.joinpath("reasoning_eval.jsonl").read_bytes())
    return data / train_name, data / eval_name


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _check_text_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.suffix in (".json", ".jsonl", ".yaml", ".txt") and path.is_file():
            raw = path.read_bytes()
            raw.decode("utf-8")
            assert b"\r\n" not in raw and raw.endswith(b"\n") and not raw.endswith(b"\n\n"), path


def _check_train_evidence(project, run_id: str, n_eval: int) -> dict:
    folder = project.runs_dir / run_id
    assert EVIDENCE <= {p.name for p in folder.iterdir()}
    manifest = evidence.load_manifest(folder / "run_manifest.json")
    assert manifest.status == "completed" and manifest.kind == "train"
    assert [d.role for d in manifest.datasets] == ["train", "eval"]
    for ref in (*manifest.datasets, manifest.config):
        assert evidence.sha256_file(project.root / ref.path) == ref.sha256
    assert manifest.model.source == "tiny" and (project.root / manifest.model.local_path / "config.json").is_file()
    env = json.loads((folder / "env_snapshot.json").read_text(encoding="utf-8"))
    assert env["torch"] and env["transformers"] and env["torch_threads"] >= 1 and "cpu_model" in env
    metrics = _lines(folder / "metrics.jsonl")
    steps, final = metrics[:-1], metrics[-1]
    assert [m["step"] for m in steps][:3] == [5, 10, 15]
    for line in steps:
        assert {"step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_seen", "elapsed_s"} <= set(line)
    assert steps[-1]["loss"] < steps[0]["loss"] * 0.8  # losses fall
    for key in ("train_runtime", "train_samples_per_second", "train_tokens_per_second", "padding_fraction", "mfu",
                "train_loss", "final_loss"):
        assert final[key] is not None, key
    assert final["padding_fraction"] < 0.1
    assert final["final"] is True and not any("final" in line for line in steps)
    assert 0 < final["mfu"] <= 1 and "matmul trials" in final["peak_method"] and final["batching"] == "packed"
    summary = json.loads((folder / "eval_summary.json").read_text(encoding="utf-8"))
    assert summary["n_items"] == summary["totals"]["n"] == n_eval == len(_lines(folder / "predictions.jsonl"))
    artifacts = json.loads((folder / "artifacts.json").read_text(encoding="utf-8"))
    for item in artifacts["files"]:
        assert evidence.sha256_file(project.root / item["path"]) == item["sha256"]
        weights = item["path"].endswith(".safetensors") or "/final_model/" in item["path"]  # init's ignore rules
        assert item["tracked"] is not weights, item
    _check_text_files(folder)
    return final


@pytest.mark.slow
def test_bundled_train_then_eval_verify_and_tamper(project, run_cli):
    root = project.root
    start_milestone(root)
    _, eval_path = _bundled(root)
    n_eval = len(_lines(eval_path))
    (root / "train.yaml").write_text(TRAIN_YAML, encoding="utf-8")
    (root / "eval.yaml").write_text(EVAL_YAML, encoding="utf-8")

    result = run_cli("run", "train", "--plugin", "torch-sft", "--config", "train.yaml")
    assert result.code == 0, result.err[-2000:]
    _check_train_evidence(project, "m44_v1", n_eval)

    result = run_cli("run", "eval", "--plugin", "torch-sft", "--config", "eval.yaml", "--run", "m44_v2")
    assert result.code == 0, result.err[-2000:]
    folder = root / "submission_runs" / "m44_v2"
    manifest = evidence.load_manifest(folder / "run_manifest.json")
    assert manifest.kind == "eval" and manifest.model.local_path == "submission_runs/m44_v1/final_model"
    summary = json.loads((folder / "eval_summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["n"] == n_eval and summary["generation"]["max_new_tokens"] == 48
    assert len(_lines(folder / "predictions.jsonl")) == n_eval
    first = _lines(folder / "predictions.jsonl")[0]
    assert {"id", "prompt", "expected", "generated", "extracted", "scores"} <= set(first)

    shown = json.loads(run_cli("show", "--json").out)
    assert [r["id"] for r in shown["runs"]] == ["m44_v1", "m44_v2"]
    assert shown["runs"][0]["metrics"]["n_eval"] == n_eval and shown["runs"][0]["metrics"]["steps"] == 60
    assert shown["runs"][1]["kind"] == "eval"
    results = [s for s in shown["entries"][-2]["sections"] if s["name"] == "Results"][0]["items"]
    assert any(item.startswith("Loss: ") and "→" in item for item in results)
    assert any(item.startswith("Eval accuracy: ") for item in results)

    assert run_cli("verify", "m44_v1").code == 0 and run_cli("verify", "m44_v2").code == 0
    metrics = root / "submission_runs" / "m44_v1" / "metrics.jsonl"
    metrics.write_text(metrics.read_text(encoding="utf-8").replace('"step": 5,', '"step": 6,'), encoding="utf-8")
    tampered = run_cli("verify", "m44_v1")
    assert tampered.code == 1 and "submission_runs/m44_v1/metrics.jsonl" in tampered.out


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")  # one worker: both rendezvous on torchrun's default port
def test_torchrun_two_cpu_processes_make_one_evidence_folder(project):
    root = project.root
    start_milestone(root)
    _bundled(root)
    config = TRAIN_YAML.replace("max_steps: 60", "max_steps: 10").replace("{tiny: {arch: gpt2}}",
                                                                          "{tiny: {arch: llama, n_embd: 64}}")
    (root / "train.yaml").write_text(config.replace("eval: data/eval_v2.jsonl", "eval_split: 0.05"), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(TORCHRUN), "--nproc-per-node", "2", "--no-python", str(MILESTONE), "run", "train",
                           "--plugin", "torch-sft", "--config", "train.yaml"],
                          cwd=root, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (root / "submission_runs").iterdir()) == ["m44_v1"]
    manifest = evidence.load_manifest(root / "submission_runs" / "m44_v1" / "run_manifest.json")
    assert manifest.world_size == 2 and manifest.status == "completed"
    events = ledger.read(project.ledger("M44"))
    assert sum(type(e).__name__ == "RunRecorded" for e in events) == 1
    assert sum(type(e).__name__ == "EntryAdded" for e in events) == 1
    assert evidence.verify(project, "m44_v1").ok
    assert not list((project.state_dir / "rendezvous").glob("*.json"))


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted_and_keeps_evidence(project):
    root = project.root
    start_milestone(root)
    _bundled(root)
    (root / "train.yaml").write_text(TRAIN_YAML.replace("max_steps: 60", "max_steps: 100000"), encoding="utf-8")
    proc = subprocess.Popen([str(MILESTONE), "run", "train", "--config", "train.yaml"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = root / "submission_runs" / "m44_v1" / "metrics.jsonl"
    deadline = time.monotonic() + 240  # the loop leaves as soon as 2 lines exist; the margin is for a loaded machine
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text(encoding="utf-8").count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    folder = metrics.parent
    manifest = evidence.load_manifest(folder / "run_manifest.json")
    assert manifest.status == "interrupted"
    assert len(_lines(metrics)) >= 2 and (folder / "loss_curve.png").exists()
    assert evidence.verify(project, "m44_v1").ok
    entry = ledger.load(project.ledger("M44")).entries[-1]
    assert entry.status == "failed" and entry.status_text == "INTERRUPTED"


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason=NEEDS_SHARED)
def test_real_corpus_data(project, run_cli):
    root = project.root
    start_milestone(root)
    data = root / "data"
    data.mkdir()
    shutil.copy(CORPUS / "dev-reasoning-v2" / "dataset.jsonl", data / "train.jsonl")
    shutil.copy(CORPUS / "eval_v2.jsonl", data / "eval_v2.jsonl")
    (root / "train.yaml").write_text(TRAIN_YAML.replace("max_steps: 60", "max_steps: 40"), encoding="utf-8")
    (root / "eval.yaml").write_text(EVAL_YAML.replace("48", "24"), encoding="utf-8")
    assert run_cli("run", "train", "--config", "train.yaml").code == 0
    _check_train_evidence(project, "m44_v1", 100)
    assert run_cli("run", "eval", "--config", "eval.yaml").code == 0
    summary = json.loads((root / "submission_runs" / "m44_v2" / "eval_summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["n"] == 100
    assert set(summary["by_section"]) == {"core", "trace_sensitive", "edge_case"}
    assert sum(g["n"] for g in summary["by_category"].values()) == 100
    assert run_cli("verify", "m44_v1").code == 0 and run_cli("verify", "m44_v2").code == 0
