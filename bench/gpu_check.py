"""The checks behind bench/gpu_check.sh: torch-sft on one device (cpu or cuda) through its real train entry point.

1. bf16 autocast training of a tiny GPT-2 (packed batches), loss falling over the steps;
2. a packed batch (rows with per-sample position ids, no attention mask) through SDPA, and flash_attention_2 when
   installed on a GPU, gives the loss of the same samples padded, within bf16 tolerance;
3. on cuda: `training.compile: true` trains too;
4. tokens/s and peak memory, and on cuda the speed-up against the CPU figures of an earlier `--device cpu` run.

    python bench/gpu_check.py --device cpu|cuda [--steps 30] [--out DIR]

Prints one `CHECK <name> ok|FAIL ...` line per check and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "tunix_rt" / "data" / "reasoning_train.jsonl"
BF16_REL_TOL = 2e-2  # bf16 keeps 8 bits of mantissa; summed losses of ~1e3 tokens agree to about 1%


def train_once(device: str, workdir: Path, steps: int, extra: dict[str, Any]) -> dict[str, Any]:
    """A real torch-sft run (validate, prepare, train) of a tiny GPT-2; returns its final metrics line."""
    from tunix_rt_torch_sft.plugin import TorchSFTPlugin

    from tunix_rt.plugins import RunContext

    sft = TorchSFTPlugin()
    raw = {"model": {"tiny": {"arch": "gpt2", "n_layer": 2, "n_embd": 128, "n_head": 4, "vocab_size": 1024}},
           "data": {"train": str(DATA), "eval_split": 0.0},
           "training": {"device": device, "batch_size": 16, "max_seq_length": 256, "max_steps": steps,
                        "learning_rate": 1e-3, "logging_steps": max(1, steps // 3), "dtype": "bfloat16", **extra},
           "seed": 0}
    config = sft.validate_config("train", raw, workdir)
    prepared = sft.prepare("train", config)
    run_dir = Path(tempfile.mkdtemp(prefix="gpu-check-", dir=workdir))
    ctx = RunContext(project_root=workdir, milestone="M00", run_id=run_dir.name, run_dir=run_dir, kind="train",
                     command="gpu_check", log=lambda line: None)
    sft.train(ctx, config, prepared)
    return json.loads((run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])


def packed_vs_padded(device: str, attn: str) -> tuple[float, float]:
    """Summed loss of 16 samples packed into rows of 256 and the same samples padded, at bf16 autocast."""
    import torch
    from transformers import AutoModelForCausalLM
    from tunix_rt_torch_sft import data as D
    from tunix_rt_torch_sft import tiny
    from tunix_rt_torch_sft.config import TinyModel
    from tunix_rt_torch_sft.loss import TargetLoss, batch_loss
    from tunix_rt_torch_sft.runtime import autocast_factory

    traces = D.load_traces(DATA).records[:16]
    tok = tiny.train_tokenizer([D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer)
                                for t in traces], 400)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny.build_config(TinyModel(arch="llama", n_embd=64, n_head=4), tok, 512),
                                             attn_implementation=attn).to(device).eval()
    model.config.use_cache = False
    samples = D.encode(traces, tok, 256, True).samples
    autocast = autocast_factory(device, "bfloat16")
    objective = TargetLoss(model)
    with torch.no_grad():
        packed, _ = batch_loss(objective, D.collate(samples, "packed", tok.pad_token_id, 256), device, autocast)
        padded, _ = batch_loss(objective, D.collate(samples, "grouped", tok.pad_token_id), device, autocast)
    return float(packed), float(padded)


def peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), required=True)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "plugins"))
    import torch
    from tunix_rt_torch_sft.modeling import quiet_transformers

    quiet_transformers()
    failed: list[str] = []

    def check(name: str, ok: bool, detail: str) -> None:
        print(f"CHECK {name} {'ok' if ok else 'FAIL'} {detail}", flush=True)
        if not ok:
            failed.append(name)

    if args.device == "cuda":
        check("cuda-visible", torch.cuda.is_available(), f"torch {torch.__version__}, cuda {torch.version.cuda}")
        if failed:
            return 1
        torch.cuda.reset_peak_memory_stats()
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        final = train_once(args.device, Path(tmp), args.steps, {})
        report["bf16_train"] = final
        check("bf16-train", final["final_loss"] < final["first_loss"],
              f"loss {final['first_loss']:.4f} -> {final['final_loss']:.4f} in {final['step']} steps, "
              f"{final['train_tokens_per_second']:,.0f} tok/s, MFU {final['mfu']:.1%} ({time.perf_counter() - t0:.1f} s)")
        attns = ["sdpa"]
        if args.device == "cuda":
            try:
                import flash_attn  # noqa: F401 - only whether it is installed

                attns.append("flash_attention_2")
            except ImportError:
                print("CHECK flash_attention_2 skipped: flash-attn is not installed", flush=True)
        for attn in attns:
            packed, padded = packed_vs_padded(args.device, attn)
            rel = abs(packed - padded) / padded
            check(f"packed-{attn}", rel < BF16_REL_TOL, f"packed {packed:.3f} vs padded {padded:.3f} (rel {rel:.2e})")
        if args.device == "cuda":
            compiled = train_once(args.device, Path(tmp), args.steps, {"compile": True})
            report["compiled_train"] = compiled
            check("compile", compiled["final_loss"] < compiled["first_loss"],
                  f"torch.compile: loss {compiled['first_loss']:.4f} -> {compiled['final_loss']:.4f}, "
                  f"{compiled['train_tokens_per_second']:,.0f} tok/s")
    report["peak_memory_mb"] = round(peak_memory_mb(args.device), 1)
    cpu_file = args.out / "gpu_check_cpu.json"
    line = f"tokens/s {final['train_tokens_per_second']:,.0f}, peak memory {report['peak_memory_mb']:,.0f} MiB"
    if args.device == "cuda" and cpu_file.exists():
        cpu = json.loads(cpu_file.read_text(encoding="utf-8"))["bf16_train"]["train_tokens_per_second"]
        line += f", {final['train_tokens_per_second'] / cpu:.1f}x the CPU run ({cpu:,.0f} tok/s)"
    print(f"CHECK figures ok {line}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"gpu_check_{args.device}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
