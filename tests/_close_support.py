"""Helpers for the close tests: real evidence folders with real hashes, and git one-liners."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

from tunix_rt import evidence, milestones
from tunix_rt.models import Run
from tunix_rt.project import Project


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def make_run(project: Project, mid: str, run_id: str, *, kind: str = "train", steps: int = 40, loss0: float = 2.5,
             record: bool = True) -> Run:
    """A complete evidence folder with real files and real hashes, linked into the ledger."""
    folder = project.runs_dir / run_id
    folder.mkdir(parents=True)
    config = "model:\n  arch: gpt2-tiny\n  n_layer: 2\ntraining:\n  batch_size: 8\n  learning_rate: 0.001\n  max_steps: %d\n" % steps
    (folder / "config.yaml").write_text(config, encoding="utf-8")
    lines = []
    for step in range(1, steps + 1):
        lines.append(json.dumps({"step": step, "epoch": round(step / steps, 4), "loss": round(loss0 / (1 + step / 10), 4),
                                 "learning_rate": round(1e-3 * (1 - step / steps), 8), "grad_norm": 1.5,
                                 "tokens_seen": step * 512, "elapsed_s": round(step * 0.25, 3)}))
    final_loss = round(loss0 / (1 + steps / 10), 4)
    lines.append(json.dumps({"final": True, "step": steps, "epoch": 1.0, "train_runtime": 10.25, "train_samples_per_second": 31.2,
                             "train_tokens_per_second": 4715.5, "padding_fraction": 0.052, "mfu": 0.36,
                             "train_loss": round(final_loss * 1.4, 4), "final_loss": final_loss}))
    if kind == "train":
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / "loss_curve.png").write_bytes(tiny_png())
        (folder / "training_log.txt").write_text("step 1 loss 2.2\n", encoding="utf-8")
    # The shape the torch-sft plugin writes (tunix_rt_torch_sft/evaluate.py).
    (folder / "eval_summary.json").write_text(json.dumps({
        "run_id": run_id, "n_items": 20, "n_scored": 20, "primary_metric": "normalised", "primary_score": 0.35,
        "totals": {"n": 20, "exact": 5, "exact_rate": 0.25, "normalised": 7, "normalised_rate": 0.35,
                   "contains": 9, "contains_rate": 0.45},
        "by_category": {"arithmetic": {"n": 12, "exact": 4, "exact_rate": 0.3333, "normalised": 5, "normalised_rate": 0.4167},
                        "geometry": {"n": 8, "exact": 1, "exact_rate": 0.125, "normalised": 2, "normalised_rate": 0.25}},
    }, indent=2) + "\n", encoding="utf-8")
    predictions = []
    for i in range(20):  # 7 right under the primary metric, as the totals above say
        right = i < 7
        expected = str(i + 4)
        got = expected if right else str(i + 40)
        predictions.append(json.dumps({
            "id": f"e{i + 1:02d}", "prompt": f"What is {i} + 4?", "expected": expected,
            "generated": f"Step 1: add\nAnswer: {got}", "extracted": got,
            "scores": {"exact": right and i < 5, "normalised": right, "contains": right},
            "section": "core", "category": "arithmetic" if i < 12 else "geometry", "difficulty": "easy"}))
    (folder / "predictions.jsonl").write_text("\n".join(predictions) + "\n", encoding="utf-8")
    (folder / "env_snapshot.json").write_text(json.dumps({"python": "3.11.7", "platform": "Linux", "cpu_model": "Test CPU",
                                                         "packages": {"torch": "2.13.0"}}, indent=2) + "\n", encoding="utf-8")
    digest = "0" * 63 + "1"
    manifest = {
        "run_id": run_id, "milestone": mid, "kind": kind, "plugin": {"name": "torch-sft", "version": "0.1.0"},
        "command": "milestone run train", "git": {"sha": None, "dirty": True},
        "config": {"path": f"{project.settings.runs_dir}/{run_id}/config.yaml", "sha256": digest},
        "datasets": [{"path": "data/train.jsonl", "sha256": digest, "role": "train", "records": 10}],
        "model": {"source": "tiny", "id": "gpt2-tiny", "arch": "gpt2"}, "seed": 1, "device": "cpu", "dtype": "float32",
        "world_size": 1, "started": "2026-01-08T12:00:00Z", "ended": "2026-01-08T12:00:10Z", "duration_s": 10.0,
        "status": "completed",
    }
    (folder / "run_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    evidence.write_artifacts(project, run_id, folder)
    run = Run(id=run_id, kind=kind, plugin="torch-sft", path=project.relative(folder), config=None, status="completed",
              started="2026-01-08T12:00:00Z", ended="2026-01-08T12:00:10Z", metrics={"final_loss": final_loss})
    if record:
        milestones.record_run(project, mid, run)
    return run


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def index_state(root: Path) -> str:
    return git(root, "ls-files", "-s")
