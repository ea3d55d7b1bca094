"""bench/gpu_check.sh: its CPU half runs here (bf16 training, packed vs padded loss); its GPU half, which needs a CUDA
device this machine lacks, is checked for syntax and for a config the plugin accepts."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def test_gpu_half_is_valid_bash_and_python_and_its_config_is_accepted():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    py_compile.compile(str(ROOT / "bench" / "gpu_check.py"), doraise=True)
    from tunix_rt_torch_sft.plugin import TorchSFTPlugin

    raw = {"model": {"tiny": {"arch": "gpt2"}, "attn_implementation": "flash_attention_2"},
           "data": {"train": str(ROOT / "tunix_rt" / "data" / "reasoning_train.jsonl")},
           "training": {"device": "cuda", "dtype": "bfloat16", "compile": True, "batching": "packed"}}
    config = TorchSFTPlugin().validate_config("train", raw, ROOT)
    assert config.training.compile and config.model.attn_implementation == "flash_attention_2"


@pytest.mark.slow
def test_cpu_half_passes(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_STEPS": "6", "GPU_CHECK_OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(SCRIPT), "cpu"], check=False, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    checks = [line for line in done.stdout.splitlines() if line.startswith("CHECK ")]
    assert [line.split()[1] for line in checks] == ["bf16-train", "packed-sdpa", "figures"], checks
    assert all(line.split()[2] == "ok" for line in checks), checks
    report = json.loads((tmp_path / "gpu_check_cpu.json").read_text(encoding="utf-8"))
    assert report["bf16_train"]["final"] is True and report["bf16_train"]["dtype"] == "bfloat16"
