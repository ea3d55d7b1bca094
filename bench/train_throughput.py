"""Benchmark: the torch-sft training loop against the hand-run project's recipe, same tiny model, same samples, same epochs.

Reference recipe (training_pt/train.py of the hand-run project, with its text bug fixed so both train on
the same samples): HF `Trainer`, every sample padded to `max_length` 256, `DataCollatorForLanguageModeling`.
Plugin: `tunix_rt_torch_sft.train.train` on the same initial weights (saved once with save_pretrained and
loaded by both), batching variants as listed. Both are scored by the same held-out loss on completion tokens.
MFU is printed against this machine's measured matmul peak.

    python bench/train_throughput.py [--data FILE.jsonl] [--epochs 2] [--variants grouped,flatten,grouped-bf16]

The last line is `ratio_tokens_per_s=<x> ratio_eval_loss=<y>` for the plugin's default variant (flatten,
fp32) against the reference at fp32; the raw numbers go to bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS_DATA = ROOT.parent / "shared" / "corpus" / "tunix-rt" / "dev-reasoning-v2" / "dataset.jsonl"
BUNDLED = ROOT / "tunix_rt" / "data" / "reasoning_train.jsonl"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=CORPUS_DATA if CORPUS_DATA.exists() else BUNDLED)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--heldout", type=float, default=0.1)
    p.add_argument("--variants", default="grouped,random,flatten,grouped-bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "train_throughput.json")
    return p.parse_args()


def reference(init_dir: Path, texts: list[str], args, workdir: Path) -> dict:
    """The hand-run recipe: Trainer + padding='max_length' + DataCollatorForLanguageModeling(mlm=False)."""
    import torch
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = AutoModelForCausalLM.from_pretrained(init_dir, dtype=torch.float32)
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=args.max_length)
    dataset = [{"input_ids": ids, "attention_mask": mask} for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    non_pad_per_epoch = sum(sum(m) for m in enc["attention_mask"])
    targs = TrainingArguments(
        output_dir=str(workdir / "reference"), per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs,
        learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        optim="adamw_torch", logging_steps=10, save_strategy="no", report_to="none", use_cpu=True, seed=args.seed,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=dataset,
                      data_collator=DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False))
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the loss dicts would drown the table
    out = trainer.train()
    runtime = out.metrics["train_runtime"]
    epochs_done = trainer.state.epoch or args.epochs
    non_pad = non_pad_per_epoch * epochs_done
    total = len(dataset) * args.max_length * epochs_done
    return {"model": model, "train_runtime": runtime, "non_pad_tokens": non_pad, "tokens_processed": total,
            "tokens_per_s": non_pad / runtime, "padding_fraction": 1 - non_pad / total, "steps": trainer.state.global_step,
            "mean_context": args.max_length}


def plugin(init_dir: Path, train_file: Path, args, workdir: Path, batching: str, dtype: str) -> dict:
    """The torch-sft loop itself, through its real entry points (config validation, prepare, train)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tunix_rt.plugins import RunContext
    from tunix_rt_torch_sft.plugin import TorchSFTPlugin

    sft = TorchSFTPlugin()
    raw = {
        "model": {"model_id": str(init_dir)},
        "data": {"train": str(train_file), "eval_split": 0.0},
        "training": {"device": "cpu", "batch_size": args.batch_size, "max_seq_length": args.max_length,
                     "num_epochs": args.epochs, "learning_rate": args.lr, "logging_steps": 10, "batching": batching,
                     "dtype": dtype, "optimizer": "adamw", "lr_scheduler": "linear", "max_grad_norm": 1.0},
        "seed": args.seed,
    }
    config = sft.validate_config("train", raw, workdir)
    prepared = sft.prepare("train", config)
    run_dir = workdir / f"plugin-{batching}-{dtype}"
    run_dir.mkdir()
    log: list[str] = []
    ctx = RunContext(project_root=workdir, milestone="M00", run_id=run_dir.name, run_dir=run_dir, kind="train",
                     command="bench", log=log.append)
    sft.train(ctx, config, prepared)
    final = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final_model", dtype=torch.float32)
    return {"model": model, "train_runtime": final["train_runtime"], "non_pad_tokens": final["tokens_seen"],
            "tokens_per_s": final["train_tokens_per_second"], "padding_fraction": final["padding_fraction"],
            "steps": final["step"], "mean_context": final["tokens_seen"] / max(1, final["train_samples_per_second"] * final["train_runtime"]),
            "plugin_mfu": final["mfu"], "plugin_peak_flops": final["peak_flops"]}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    sys.path.insert(0, str(ROOT / "plugins"))
    from tunix_rt_torch_sft import data as D
    from tunix_rt_torch_sft import tiny
    from tunix_rt_torch_sft.config import TinyModel
    from tunix_rt_torch_sft.train import flops_per_token, heldout_loss, measure_peak_flops, quiet_transformers, set_threads

    quiet_transformers()
    threads = set_threads(None, 1)
    loaded = D.load_traces(args.data)
    train, held = D.split_heldout(loaded.records, args.heldout, args.seed)
    texts = [D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer) for t in train]
    peak = {"float32": measure_peak_flops("cpu", "float32", 1.5), "bfloat16": measure_peak_flops("cpu", "bfloat16", 1.5)}
    print(f"data {args.data.name}: {len(train)} training samples, {len(held)} held out; {args.epochs} epochs, batch "
          f"{args.batch_size}, torch {torch.__version__}, transformers {transformers.__version__}, {threads} threads")
    print(f"measured matmul peak: fp32 {peak['float32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tokenizer = tiny.train_tokenizer(texts, args.vocab)
        spec = TinyModel(arch="gpt2", n_layer=args.layers, n_embd=args.width, n_head=4, vocab_size=args.vocab)
        init_dir = tiny.build(spec, tokenizer, max(512, args.max_length * 2), args.seed, workdir / "init")
        train_file = workdir / "train.jsonl"
        train_file.write_text("".join(json.dumps({"prompt": t.prompt, "steps": [{"i": i, "type": "s", "content": c}
                                                  for i, c in enumerate(t.steps)], "final_answer": t.final_answer}) + "\n"
                                      for t in train), encoding="utf-8")
        eos_text = tokenizer.eos_token
        held_samples = D.encode(held, tokenizer, args.max_length, completion_only=True).samples

        def score(result: dict, dtype: str) -> dict:
            model = result.pop("model")
            model.config.use_cache = False
            loss = heldout_loss(model, held_samples, "grouped", tokenizer.pad_token_id, "cpu", nullcontext, 16)
            fpt = flops_per_token(model, result["mean_context"])
            result.update(eval_loss=loss, flops_per_token=fpt, mfu=fpt * result["tokens_per_s"] / peak[dtype], dtype=dtype,
                          params=sum(p.numel() for p in model.parameters()))
            if "tokens_processed" in result:  # the reference also burns compute on pads
                result["hardware_utilisation"] = fpt * result["tokens_processed"] / result["train_runtime"] / peak[dtype]
            return result

        results = {}
        t0 = time.perf_counter()
        results["reference"] = score(reference(init_dir, [x + eos_text for x in texts], args, workdir), "float32")
        for variant in [v for v in args.variants.split(",") if v]:
            batching, _, low = variant.partition("-")
            dtype = "bfloat16" if low == "bf16" else "float32"
            results[variant] = score(plugin(init_dir, train_file, args, workdir, batching, dtype), dtype)
        wall = time.perf_counter() - t0

    ref = results["reference"]
    print(f"{'recipe':<16}{'dtype':>9}{'steps':>7}{'runtime s':>11}{'non-pad tok/s':>15}{'padding':>9}{'MFU':>7}"
          f"{'eval loss':>11}{'ratio tok/s':>13}")
    for name, r in results.items():
        print(f"{name:<16}{r['dtype']:>9}{r['steps']:>7}{r['train_runtime']:>11.1f}{r['tokens_per_s']:>15,.0f}"
              f"{r['padding_fraction']:>9.1%}{r['mfu']:>7.1%}{r['eval_loss']:>11.4f}{r['tokens_per_s'] / ref['tokens_per_s']:>12.2f}x")
    if "hardware_utilisation" in ref:
        print(f"reference hardware utilisation counting pad tokens: {ref['hardware_utilisation']:.1%}")
    head = results.get("flatten") or next(r for n, r in results.items() if n != "reference" and r["dtype"] == "float32")
    ratio_tps = head["tokens_per_s"] / ref["tokens_per_s"]
    ratio_loss = head["eval_loss"] / ref["eval_loss"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "data": args.data.name, "train_samples": len(train), "heldout_samples": len(held), "epochs": args.epochs,
        "batch_size": args.batch_size, "max_length": args.max_length, "learning_rate": args.lr,
        "model": {"arch": "gpt2", "layers": args.layers, "width": args.width, "vocab": args.vocab, "params": ref["params"]},
        "machine": {"platform": platform.platform(), "threads": threads, "peak_flops": peak,
                    "torch": torch.__version__, "transformers": transformers.__version__},
        "results": results, "wall_s": wall,
        "ratio_tokens_per_s": ratio_tps, "ratio_eval_loss": ratio_loss,
        "ratio_defined_as": "plugin default (flatten) fp32 / reference fp32 (tokens/s); plugin eval loss / reference eval loss",
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"raw numbers: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    print(f"ratio_tokens_per_s={ratio_tps:.2f} ratio_eval_loss={ratio_loss:.3f}")


if __name__ == "__main__":
    main()
