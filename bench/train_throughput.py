"""Benchmark: the torch-sft loop against TRL's SFTTrainer and the hand-run recipe, same tiny model, data, steps, schedule.

Contenders, on the same initial weights (built once, saved with save_pretrained, loaded by each):
  packed            torch-sft default: random micro-batches best-fit packed into rows of <= max_length
  trl-padding-free  TRL SFTTrainer, padding_free=True (one flattened row, position ids), completion-only loss
  trl-bfd           TRL SFTTrainer, packing=True with packing_strategy="bfd" (best-fit decreasing, position ids)
  reference         the hand-run recipe: HF Trainer, every sample padded to max_length (run once, first round)
Each recipe trains with batch --batch-size samples per step, AdamW (fused), linear decay, clip 1.0, fp32, for the
same epochs. The contenders run interleaved (A B C A B C ...) for --rounds rounds, so a load swing on a shared
machine hits all of them; the table gives medians and the ratio of the plugin to the faster TRL recipe per round.
All are scored by the same held-out loss on completion tokens. `--curve 8,16,32` adds training-step tokens/s of the
plugin's batching modes (packed, flatten, grouped) at each batch size, also interleaved; `--micro` times the fused
AdamW step and the output layer on target tokens only against their plain counterparts.

    python bench/train_throughput.py [--data FILE] [--epochs 1] [--rounds 3] [--curve 8,16,32] [--micro] [--profile]

Needs `pip install -e '.[train,bench]'` (TRL). The last line is
`ratio_tokens_per_s=<x> ratio_eval_loss=<y>` (plugin default / faster TRL recipe, medians); raw numbers go to
bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS_DATA = ROOT.parent / "shared" / "corpus" / "tunix-rt" / "dev-reasoning-v2" / "dataset.jsonl"
BUNDLED = ROOT / "tunix_rt" / "data" / "reasoning_train.jsonl"
PLUGIN = "packed"
TRL_RECIPES = ("trl-padding-free", "trl-bfd")


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
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--contenders", default=",".join((PLUGIN, *TRL_RECIPES)))
    p.add_argument("--no-reference", action="store_true", help="skip the hand-run recipe (pad to max_length)")
    p.add_argument("--curve", default="", help="batch sizes for the batching-mode curve, e.g. 8,16,32")
    p.add_argument("--curve-steps", type=int, default=12, help="micro-batches per point of the curve")
    p.add_argument("--micro", action="store_true", help="fused vs foreach AdamW; output layer on targets vs all")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of one plugin run and one TRL run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "train_throughput.json")
    return p.parse_args()


def write_train_file(traces: list, path: Path) -> None:
    path.write_text("".join(json.dumps({"prompt": t.prompt, "steps": [{"i": i, "type": "s", "content": c}
                                                                          for i, c in enumerate(t.steps)],
                                        "final_answer": t.final_answer}) + "\n" for t in traces), encoding="utf-8")


def plugin(init_dir: Path, train_file: Path, args, workdir: Path, batching: str, batch_size: int,
           max_steps: int | None = None) -> dict[str, Any]:
    """The torch-sft loop itself, through its real entry points (config validation, prepare, train)."""
    import torch
    from transformers import AutoModelForCausalLM
    from tunix_rt_torch_sft.plugin import TorchSFTPlugin

    from tunix_rt.plugins import RunContext

    sft = TorchSFTPlugin()
    training = {"device": "cpu", "batch_size": batch_size, "max_seq_length": args.max_length, "num_epochs": args.epochs,
                "learning_rate": args.lr, "logging_steps": 10, "batching": batching, "optimizer": "adamw",
                "lr_scheduler": "linear", "max_grad_norm": 1.0}
    if max_steps:
        training["max_steps"] = max_steps
    raw = {"model": {"model_id": str(init_dir)}, "data": {"train": str(train_file), "eval_split": 0.0},
           "training": training, "seed": args.seed}
    config = sft.validate_config("train", raw, workdir)
    prepared = sft.prepare("train", config)
    run_dir = Path(tempfile.mkdtemp(prefix=f"plugin-{batching}-{batch_size}-", dir=workdir))
    ctx = RunContext(project_root=workdir, milestone="M00", run_id=run_dir.name, run_dir=run_dir, kind="train",
                     command="bench", log=lambda line: None)
    sft.train(ctx, config, prepared)
    final = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["final"] is True
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final_model", dtype=torch.float32)
    return {"model": model, "train_runtime": final["train_runtime"], "tokens": final["tokens_seen"],
            "tokens_per_s": final["train_tokens_per_second"], "padding_fraction": final["padding_fraction"],
            "steps": final["step"], "mfu": final["mfu"], "peak_method": final["peak_method"]}


def trl(init_dir: Path, traces: list, args, workdir: Path, recipe: str, tokens_per_epoch: int) -> dict[str, Any]:
    """TRL SFTTrainer as its docs recommend for throughput: padding-free or BFD packing, completion-only loss."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer
    from tunix_rt_torch_sft import data as D

    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = AutoModelForCausalLM.from_pretrained(init_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    dataset = Dataset.from_list([{"prompt": D.format_prompt(t.prompt),
                                  "completion": D.format_completion(t.steps, t.final_answer)} for t in traces])
    packing = recipe == "trl-bfd"
    # BFD's batch counts packed rows of max_length tokens: as many rows as hold the tokens of --batch-size samples,
    # so every recipe takes the same tokens per optimizer step (and about the same number of steps).
    rows = max(1, round(args.batch_size * tokens_per_epoch / len(traces) / args.max_length))
    targs = SFTConfig(
        output_dir=str(workdir / recipe), per_device_train_batch_size=rows if packing else args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        optim="adamw_torch_fused", logging_steps=10, save_strategy="no", report_to="none", use_cpu=True,
        seed=args.seed, dataloader_num_workers=0, disable_tqdm=True,
        # padding-free without packing does not truncate (TRL refuses max_length there); no sample here is longer.
        max_length=args.max_length if packing else None,
        completion_only_loss=True, padding_free=not packing, packing=packing,
        gradient_checkpointing=False,  # TRL turns it on by default: it trades speed for memory, not wanted here
        **({"packing_strategy": "bfd"} if packing else {}),
    )
    trainer = SFTTrainer(model=model, args=targs, train_dataset=dataset, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    out = trainer.train()
    runtime = out.metrics["train_runtime"]
    tokens = tokens_per_epoch * (trainer.state.epoch or args.epochs)
    return {"model": model, "train_runtime": runtime, "tokens": tokens, "tokens_per_s": tokens / runtime,
            "padding_fraction": 0.0,  # padding-free by construction: flattened rows, no pad tokens
            "steps": trainer.state.global_step}


def reference(init_dir: Path, texts: list[str], args, workdir: Path) -> dict[str, Any]:
    """The hand-run recipe: Trainer + padding='max_length' + DataCollatorForLanguageModeling(mlm=False)."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )
    from transformers.trainer_callback import PrinterCallback

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
    trainer.remove_callback(PrinterCallback)
    out = trainer.train()
    runtime = out.metrics["train_runtime"]
    epochs = trainer.state.epoch or args.epochs
    non_pad = non_pad_per_epoch * epochs
    return {"model": model, "train_runtime": runtime, "tokens": non_pad, "tokens_per_s": non_pad / runtime,
            "padding_fraction": 1 - non_pad / (len(dataset) * args.max_length * epochs), "steps": trainer.state.global_step}


def _step_setup(init_dir: Path, traces: list, tokenizer, args):
    import torch
    from transformers import AutoModelForCausalLM
    from tunix_rt_torch_sft import data as D
    from tunix_rt_torch_sft.loss import TargetLoss

    model = AutoModelForCausalLM.from_pretrained(init_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    return model, TargetLoss(model), D.encode(traces, tokenizer, args.max_length, completion_only=True).samples


def step_curve(init_dir: Path, traces: list, tokenizer, args, sizes: list[int]) -> dict[str, dict[str, float]]:
    """Training-step tokens/s (forward, backward, fused AdamW) of each batching mode at each batch size.

    The same --curve-steps micro-batches per size for every mode, modes interleaved within each round; the
    figure is the median over rounds of real tokens / summed step time.
    """
    import statistics as st

    import torch
    from tunix_rt_torch_sft import data as D
    from tunix_rt_torch_sft.loss import batch_loss

    model, objective, samples = _step_setup(init_dir, traces, tokenizer, args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    modes = ("packed", "flatten", "grouped")
    rates: dict[tuple[int, str], list[float]] = {}
    for number in range(1, args.rounds + 1):
        for size in sizes:
            plan = D.plan_batches([len(s.input_ids) for s in samples], size, "random", number)[: args.curve_steps]
            for mode in modes:
                seconds, tokens = 0.0, 0
                for idx in plan:
                    chosen = [samples[i] for i in idx]
                    began = time.perf_counter()
                    loss, _ = batch_loss(objective, D.collate(chosen, mode, tokenizer.pad_token_id, args.max_length),
                                         "cpu", nullcontext)
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    seconds += time.perf_counter() - began
                    tokens += D.real_tokens(chosen)
                rates.setdefault((size, mode), []).append(tokens / seconds)
                print(f"curve round {number} batch {size:>3} {mode:<8} {tokens / seconds:>9,.0f} tok/s", flush=True)
    return {str(size): {mode: st.median(rates[(size, mode)]) for mode in modes} for size in sizes}


def micro_wins(init_dir: Path, traces: list, tokenizer, args) -> dict[str, float]:
    """Medians (ms) of interleaved trials: AdamW step fused vs foreach; forward+backward with the output layer on
    target tokens only vs on every position (the model's own logits)."""
    import statistics as st

    import torch
    import torch.nn.functional as F
    from tunix_rt_torch_sft import data as D
    from tunix_rt_torch_sft.loss import batch_loss

    model, objective, samples = _step_setup(init_dir, traces, tokenizer, args)
    fused = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    foreach = torch.optim.AdamW(model.parameters(), lr=1e-6, foreach=True)
    plan = D.plan_batches([len(s.input_ids) for s in samples], args.batch_size, "random", 0)[:20]
    times: dict[str, list[float]] = {}

    def timed(name: str, fn) -> None:
        began = time.perf_counter()
        fn()
        times.setdefault(name, []).append((time.perf_counter() - began) * 1e3)

    def full_logits(batch) -> None:
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[:, :-1]
        F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1),
                        ignore_index=D.IGNORE, reduction="sum").backward()

    for idx in plan:
        batch = D.collate([samples[i] for i in idx], "packed", tokenizer.pad_token_id, args.max_length)
        timed("fwd_bwd_target_only_ms", lambda b=batch: batch_loss(objective, b, "cpu", nullcontext)[0].backward())
        timed("fwd_bwd_full_logits_ms", lambda b=batch: full_logits(b))
        timed("adamw_fused_ms", fused.step)
        timed("adamw_foreach_ms", foreach.step)
        model.zero_grad(set_to_none=True)
    out = {name: st.median(values) for name, values in times.items()}
    for name, value in out.items():
        print(f"micro {name:<26} {value:8.2f} ms (median of {len(times[name])})", flush=True)
    return out


def profile(fn) -> str:
    """The top operators of one run by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    sys.path.insert(0, str(ROOT / "plugins"))
    try:
        import trl as trl_module
    except ImportError:
        sys.exit("TRL is not installed: pip install -e '.[train,bench]'")
    from tunix_rt_torch_sft import data as D
    from tunix_rt_torch_sft import tiny
    from tunix_rt_torch_sft.config import TinyModel
    from tunix_rt_torch_sft.loss import TargetLoss, heldout_loss
    from tunix_rt_torch_sft.modeling import quiet_transformers
    from tunix_rt_torch_sft.runtime import set_threads

    quiet_transformers()
    import datasets

    datasets.disable_progress_bar()
    threads = set_threads(None, 1)
    loaded = D.load_traces(args.data)
    train, held = D.split_heldout(loaded.records, args.heldout, args.seed)
    texts = [D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer) for t in train]
    print(f"data {args.data.name}: {len(train)} training samples, {len(held)} held out; {args.epochs} epochs, batch "
          f"{args.batch_size}, torch {torch.__version__}, transformers {transformers.__version__}, trl "
          f"{trl_module.__version__}, {threads} threads, {args.rounds} interleaved rounds", flush=True)
    contenders = [c for c in args.contenders.split(",") if c]
    runs: dict[str, list[dict[str, Any]]] = {}

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tokenizer = tiny.train_tokenizer(texts, args.vocab)
        spec = TinyModel(arch="gpt2", n_layer=args.layers, n_embd=args.width, n_head=4, vocab_size=args.vocab)
        init_dir = tiny.build(spec, tokenizer, max(512, args.max_length * 2), args.seed, workdir / "init")
        train_file = workdir / "train.jsonl"
        write_train_file(train, train_file)
        tokens_per_epoch = D.real_tokens(D.encode(train, tokenizer, args.max_length, completion_only=True).samples)
        held_samples = D.encode(held, tokenizer, args.max_length, completion_only=True).samples

        def scored(result: dict[str, Any]) -> dict[str, Any]:
            model = result.pop("model")
            model.config.use_cache = False
            result["eval_loss"] = heldout_loss(TargetLoss(model), held_samples, "cpu", nullcontext, 16,
                                               tokenizer.pad_token_id)
            return result

        def run(name: str, batch_size: int | None = None, max_steps: int | None = None) -> dict[str, Any]:
            if name.startswith("trl-"):
                return scored(trl(init_dir, train, args, workdir, name, tokens_per_epoch))
            if name == "reference":
                return scored(reference(init_dir, [x + tokenizer.eos_token for x in texts], args, workdir))
            return scored(plugin(init_dir, train_file, args, workdir, name, batch_size or args.batch_size, max_steps))

        t0 = time.perf_counter()
        for number in range(1, args.rounds + 1):
            order = (["reference"] if number == 1 and not args.no_reference else []) + contenders
            for name in order:
                result = run(name)
                runs.setdefault(name, []).append(result)
                print(f"round {number} {name:<18} {result['tokens_per_s']:>9,.0f} tok/s  eval loss "
                      f"{result['eval_loss']:.4f}  ({result['train_runtime']:.1f} s, {result['steps']} steps)", flush=True)
        sizes = [int(b) for b in args.curve.split(",") if b]
        curve = step_curve(init_dir, train, tokenizer, args, sizes) if sizes else {}
        micro = micro_wins(init_dir, train, tokenizer, args) if args.micro else {}
        profiles = {}
        if args.profile:
            profiles[PLUGIN] = profile(lambda: run(PLUGIN))
            profiles["trl-padding-free"] = profile(lambda: run("trl-padding-free"))
            for name, table in profiles.items():
                print(f"--- profile: {name}\n{table}")
        wall = time.perf_counter() - t0

    medians = {name: {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs),
                      "eval_loss": statistics.median(r["eval_loss"] for r in rs),
                      "train_runtime": statistics.median(r["train_runtime"] for r in rs),
                      "padding_fraction": rs[0]["padding_fraction"], "steps": rs[0]["steps"], "runs": len(rs)}
               for name, rs in runs.items()}
    trl_present = [n for n in TRL_RECIPES if n in medians]
    faster = max(trl_present, key=lambda n: medians[n]["tokens_per_s"]) if trl_present else None
    print(f"\n{'recipe':<18}{'runs':>5}{'steps':>7}{'median tok/s':>14}{'padding':>9}{'eval loss':>11}")
    for name, m in medians.items():
        print(f"{name:<18}{m['runs']:>5}{m['steps']:>7}{m['tokens_per_s']:>14,.0f}{m['padding_fraction']:>9.1%}"
              f"{m['eval_loss']:>11.4f}")
    for size, modes in curve.items():
        print(f"curve batch {size:>3}: " + ", ".join(f"{mode} {rate:,.0f}" for mode, rate in modes.items())
              + f" tok/s (training step, medians of {args.rounds} rounds of {args.curve_steps} micro-batches)")
    per_round: list[float] = []
    ratio_tps = ratio_loss = None
    if faster and PLUGIN in runs:
        per_round = [p["tokens_per_s"] / f["tokens_per_s"] for p, f in zip(runs[PLUGIN], runs[faster])]
        ratio_tps = medians[PLUGIN]["tokens_per_s"] / medians[faster]["tokens_per_s"]
        best_loss = min(m["eval_loss"] for n, m in medians.items() if n in (*trl_present, PLUGIN))
        ratio_loss = medians[PLUGIN]["eval_loss"] / best_loss
        print(f"plugin ({PLUGIN}) / faster TRL recipe ({faster}) per round: "
              + ", ".join(f"{r:.2f}x" for r in per_round))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {name: {**m, "tokens_per_s_runs": [r["tokens_per_s"] for r in runs[name]],
                      "eval_loss_runs": [r["eval_loss"] for r in runs[name]]} for name, m in medians.items()}
    payload = {
        "data": args.data.name, "train_samples": len(train), "heldout_samples": len(held), "epochs": args.epochs,
        "batch_size": args.batch_size, "max_length": args.max_length, "learning_rate": args.lr, "rounds": args.rounds,
        "model": {"arch": "gpt2", "layers": args.layers, "width": args.width, "vocab": args.vocab,
                  "params": sum(p.numel() for p in transformers.AutoModelForCausalLM.from_config(
                      tiny.build_config(spec, tokenizer, max(512, args.max_length * 2))).parameters())},
        "machine": {"platform": platform.platform(), "threads": threads, "torch": torch.__version__,
                    "transformers": transformers.__version__, "trl": trl_module.__version__},
        "results": results, "curve": curve, "micro": micro, "profiles": profiles, "wall_s": wall,
        "faster_trl": faster, "ratio_per_round": per_round, "ratio_tokens_per_s": ratio_tps,
        "ratio_eval_loss": ratio_loss,
        "ratio_defined_as": "median tokens/s of the plugin default (packed, fp32) / median of the faster TRL recipe; "
                            "plugin median held-out loss / best median held-out loss among plugin and TRL recipes",
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"raw numbers: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if ratio_tps is not None:
        print(f"ratio_tokens_per_s={ratio_tps:.2f} ratio_eval_loss={ratio_loss:.3f}")


if __name__ == "__main__":
    main()
