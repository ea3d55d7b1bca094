"""torch-sft beyond one process and one full model: FSDP2 under torchrun on 2 CPU processes (gloo), LoRA through peft
with the adapter reloadable by from_pretrained and evaluable by `run eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from _runs_support import start_milestone

from tunix_rt import evidence

MILESTONE = Path(sys.executable).with_name("milestone")
TORCHRUN = Path(sys.executable).with_name("torchrun")
TINY = "{tiny: {arch: llama, n_layer: 2, n_embd: 64, n_head: 2}}"


def _data(root: Path) -> None:
    start_milestone(root)
    (root / "data").mkdir()
    package = resources.files("tunix_rt.data")
    (root / "data" / "train.jsonl").write_bytes(package.joinpath("reasoning_train.jsonl").read_bytes())
    (root / "data" / "eval.jsonl").write_bytes(package.joinpath("reasoning_eval.jsonl").read_bytes())


def _final(folder: Path) -> dict:
    return json.loads((folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(next(folder.glob("*.safetensors"))))


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")  # one worker: both rendezvous on torchrun's default port
def test_fsdp_on_two_cpu_processes_trains_and_saves_one_full_model(project):
    import torch
    from transformers import AutoModelForCausalLM

    root = project.root
    _data(root)
    (root / "fsdp.yaml").write_text(
        f"model: {TINY}\ndata: {{train: data/train.jsonl, eval_split: 0.05}}\n"
        "training: {device: cpu, batch_size: 4, max_steps: 8, logging_steps: 2, learning_rate: 3.0e-3, strategy: fsdp,"
        " gradient_accumulation_steps: 2}\n", encoding="utf-8")
    done = subprocess.run([str(TORCHRUN), "--nproc-per-node", "2", "--no-python", str(MILESTONE), "run", "train",
                           "--plugin", "torch-sft", "--config", "fsdp.yaml"], check=False, cwd=root,
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = root / "submission_runs" / "m44_v1"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["m44_v1"]
    final = _final(folder)
    assert final["final"] is True and final["strategy"] == "fsdp" and final["world_size"] == 2
    assert final["final_loss"] < final["first_loss"] and final["eval_loss"] is not None
    # The shards were gathered into one ordinary checkpoint that from_pretrained loads; training changed it.
    trained, init = _weights(folder / "final_model"), _weights(folder / "init_model")
    assert set(trained) == set(init) and any(not torch.equal(trained[k], init[k]) for k in init)
    AutoModelForCausalLM.from_pretrained(folder / "final_model")
    assert evidence.verify(project, "m44_v1").ok


@pytest.mark.slow
def test_lora_adapter_is_saved_reloadable_and_evaluable(project, run_cli):
    from peft import AutoPeftModelForCausalLM

    root = project.root
    _data(root)
    (root / "lora.yaml").write_text(
        f"model: {TINY}\ndata: {{train: data/train.jsonl, eval_split: 0.05}}\n"
        "training: {device: cpu, batch_size: 4, max_steps: 6, logging_steps: 2, learning_rate: 1.0e-2,"
        " lora: {r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}\n", encoding="utf-8")
    assert run_cli("run", "train", "--plugin", "torch-sft", "--config", "lora.yaml").code == 0
    folder = root / "submission_runs" / "m44_v1"
    adapter = folder / "final_model"
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["r"] == 4 and config["base_model_name_or_path"] == "submission_runs/m44_v1/init_model"
    saved = _weights(adapter)
    assert saved and all("lora_" in k for k in saved)  # the adapter alone, not the base weights
    assert any(float(v.abs().sum()) > 0 for k, v in saved.items() if "lora_B" in k)  # B starts at zero: trained
    card = (adapter / "README.md").read_text(encoding="utf-8")  # the model card names the adapter's library and base
    assert "\nlibrary_name: peft\n" in card and "\nbase_model: submission_runs/m44_v1/init_model\n" in card
    model = AutoPeftModelForCausalLM.from_pretrained(adapter)
    loaded = [v for k, v in model.state_dict().items() if "lora_" in k]
    assert sorted(float(v.double().sum()) for v in loaded) == sorted(float(v.double().sum()) for v in saved.values())
    (root / "eval.yaml").write_text("model: {model_id: submission_runs/m44_v1/final_model}\n"
                                    "data: {eval: data/eval.jsonl}\neval: {max_new_tokens: 8, max_items: 4}\n",
                                    encoding="utf-8")
    assert run_cli("run", "eval", "--plugin", "torch-sft", "--config", "eval.yaml").code == 0
    summary = json.loads((root / "submission_runs" / "m44_v2" / "eval_summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["n"] == 4
