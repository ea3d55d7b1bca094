"""The model card a train run writes into final_model/README.md: Hugging Face front matter equal to the evidence,
covered by artifacts.json, no secrets, and the folder still loads with from_pretrained."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from _runs_support import start_milestone

from tunix_rt import evidence

TINY = {"arch": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 400}
SECRET = "hf_" + "Q7xZ" * 9  # an HF_TOKEN-shaped value in the environment of the run


def _data(root: Path) -> None:
    start_milestone(root)
    (root / "data").mkdir()
    package = resources.files("tunix_rt.data")
    (root / "data" / "train.jsonl").write_bytes(package.joinpath("reasoning_train.jsonl").read_bytes())
    (root / "data" / "eval.jsonl").write_bytes(package.joinpath("reasoning_eval.jsonl").read_bytes())


def _front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def _train(project, run_cli, monkeypatch, data: str, eval_block: str = "") -> Path:
    _data(project.root)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    tiny = json.dumps(TINY).replace('"', "")
    (project.root / "train.yaml").write_text(
        f"model: {{tiny: {tiny}}}\ndata: {data}\n"
        "training: {device: cpu, batch_size: 8, max_steps: 4, logging_steps: 2, learning_rate: 1.0e-3}\n"
        + eval_block, encoding="utf-8")
    result = run_cli("run", "train", "--plugin", "torch-sft", "--config", "train.yaml")
    assert result.code == 0, result.err[-2000:]
    return project.runs_dir / "m44_v1"


@pytest.mark.slow
def test_card_front_matter_equals_the_evidence_and_the_folder_still_loads(project, run_cli, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _train(project, run_cli, monkeypatch, "{train: data/train.jsonl, eval: data/eval.jsonl, eval_split: 0.1}",
                    "eval: {max_new_tokens: 4, max_items: 6}\n")
    path = folder / "final_model" / "README.md"
    text = path.read_text(encoding="utf-8")
    meta, body = _front_matter(text)
    manifest = evidence.load_manifest(folder / "run_manifest.json")
    train_ref, eval_ref = manifest.datasets
    summary = json.loads((folder / "eval_summary.json").read_text(encoding="utf-8"))
    final = evidence.read_metrics(folder / "metrics.jsonl").final
    assert final is not None

    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert "base_model" not in meta and meta["tiny_model"] == {**TINY, "init": "random"}
    assert "license" not in meta  # a random-init model trained on the project's data: not known
    (index,) = meta["model-index"]
    assert index["name"] == "m44_v1"
    by_split = {r["dataset"]["split"]: r for r in index["results"]}
    scored, heldout = by_split["test"], by_split["heldout"]
    assert scored["task"]["type"] == heldout["task"]["type"] == "text-generation"
    assert scored["dataset"]["name"] == eval_ref.path == summary["eval_set"]["path"] == "data/eval.jsonl"
    assert scored["dataset"]["revision"] == eval_ref.sha256 == summary["eval_set"]["sha256"]
    rates = {m["type"]: m["value"] for m in scored["metrics"]}
    assert rates == {name: summary["totals"][f"{name}_rate"] for name in ("exact", "normalised", "contains")}
    assert summary["primary_metric"] == "normalised" and rates["normalised"] == summary["primary_score"]
    assert heldout["dataset"]["name"] == train_ref.path == "data/train.jsonl"
    assert heldout["dataset"]["revision"] == train_ref.sha256
    assert heldout["metrics"] == [{"type": "loss", "value": final.eval_loss,
                                   "name": "held-out loss (mean cross-entropy per target token)"}]

    # The body: the evidence folder, the config's key values, the headline numbers of metrics.jsonl.
    assert "`submission_runs/m44_v1/`" in body and "milestone M44" in body
    assert f"| {final.step} | {final.epoch:.2f} | {final.first_loss:.4f} | {final.final_loss:.4f} |" in body
    assert f"{final.train_tokens_per_second:,.0f}" in body
    assert "| training.max_steps | 4 |" in body and "| data.train | `data/train.jsonl` |" in body
    assert train_ref.sha256 in body and eval_ref.sha256 in body
    assert f"normalised {summary['totals']['normalised']}/6 (primary)" in body
    # No secret, no machine path; LF with one final newline like all evidence text.
    assert SECRET not in text and str(project.root) not in text
    assert "\r" not in text and text.endswith("\n") and not text.endswith("\n\n")

    from huggingface_hub import ModelCard

    card = ModelCard.load(path)  # huggingface_hub reads back what it rendered
    assert [r.metric_value for r in card.data.eval_results] == [*rates.values(), final.eval_loss]

    artifacts = json.loads((folder / "artifacts.json").read_text(encoding="utf-8"))
    listed = {a["path"]: a["sha256"] for a in artifacts["files"]}
    assert listed["submission_runs/m44_v1/final_model/README.md"] == evidence.sha256_file(path)
    assert evidence.verify(project, "m44_v1").ok
    model = AutoModelForCausalLM.from_pretrained(folder / "final_model")
    tokenizer = AutoTokenizer.from_pretrained(folder / "final_model")
    assert model.config.n_layer == TINY["n_layer"] and tokenizer.eos_token == "<|endoftext|>"


@pytest.mark.slow
def test_a_run_that_did_not_evaluate_says_so_and_has_no_model_index(project, run_cli, monkeypatch):
    folder = _train(project, run_cli, monkeypatch, "{train: data/train.jsonl, eval_split: 0.0}")
    meta, body = _front_matter((folder / "final_model" / "README.md").read_text(encoding="utf-8"))
    assert "model-index" not in meta and "model_name" not in meta
    assert "did not evaluate the model" in body


def test_the_base_models_license_is_read_from_its_local_card(tmp_path):
    from tunix_rt_torch_sft.card import base_license

    base = tmp_path / "base"
    base.mkdir()
    config = SimpleNamespace(model=SimpleNamespace(tiny=None, model_id=str(base), revision=None))
    assert base_license(config) is None
    (base / "README.md").write_text("---\nlicense: apache-2.0\n---\n# base\n", encoding="utf-8")
    assert base_license(config) == "apache-2.0"
