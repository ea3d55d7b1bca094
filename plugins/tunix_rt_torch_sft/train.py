"""The SFT loop, top to bottom: devices and threads, model, data, optimizer, loop, held-out loss, checkpoints, final
model, scored eval.

A plain loop (no Trainer): batches padded only to their own longest sample (or flattened), loss on
completion tokens summed and divided by the mean target-token count of a step, autocast as
configured, one metrics.jsonl line per logging step written as it happens. Under torchrun it runs
DDP (gloo on CPU, NCCL on GPUs); rank 0 alone writes.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from tunix_rt.evidence import write_json
from tunix_rt.plugins import Prepared, RunContext, RunResult

from tunix_rt_torch_sft import data as D

DTYPES = {"float32": None, "bfloat16": "bfloat16", "float16": "float16"}


# --- devices ------------------------------------------------------------------------------------


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from tunix_rt.errors import TunixError

        raise TunixError("config: 'training.device' is cuda but torch sees no CUDA device")
    return name


def set_threads(requested: int | None, local_world: int) -> int:
    """All usable cores split between the local processes (one thread is ~1.75x slower than two here)."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = requested or max(1, usable // max(1, local_world))
    torch.set_num_threads(threads)
    return threads


def autocast_factory(device: str, dtype: str):
    import torch

    if dtype == "float32":
        return nullcontext
    return lambda: torch.autocast(device_type=device, dtype=getattr(torch, dtype))


def measure_peak_flops(device: str, dtype: str, seconds: float = 0.4) -> float:
    """Matmul throughput of this machine at `dtype` (the MFU denominator), measured, not looked up."""
    import torch

    n = 1024 if device == "cpu" else 8192
    tdtype = torch.float32 if dtype == "float32" else getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(tdtype)
    b = torch.randn(n, n, device=device).to(tdtype)
    for _ in range(2):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - t0)


def flops_per_token(model, mean_context: float) -> float:
    """6 x matmul parameters (the LM head counted even when tied) + 12 x layers x width x context."""
    cfg = model.config
    embeddings = {id(p) for m in model.modules() if m.__class__.__name__.endswith("Embedding") for p in m.parameters()}
    matmul = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in embeddings)
    width = getattr(cfg, "hidden_size", None) or cfg.n_embd
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    matmul += cfg.vocab_size * width  # the output projection
    return 6 * matmul + 12 * layers * width * mean_context


def environment(device: str, threads: int) -> dict[str, Any]:
    import torch
    import transformers

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": threads,
        "cuda_available": torch.cuda.is_available(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env["cuda"] = {
            "version": torch.version.cuda,
            "gpu_name": props.name,
            "gpu_memory_gb": round(props.total_memory / 2**30, 2),
            "device_count": torch.cuda.device_count(),
        }
        from tunix_rt.environment import nvidia_smi  # noqa: F401 - availability only

        import shutil
        import subprocess

        exe = shutil.which("nvidia-smi")
        if exe:
            done = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=20)
            env["cuda"]["driver"] = (
                done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else None
            )
    return env


# --- model --------------------------------------------------------------------------------------


def quiet_transformers() -> None:
    """The run's own log says what happens; transformers' progress bars and hints would only add noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_model(config, model_dir: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt_torch_sft import hub

    quiet_transformers()

    revision = config.model.revision if config.model.tiny is None and not Path(model_dir).exists() else None
    tokenizer = AutoTokenizer.from_pretrained(model_dir, revision=revision, token=hub.token())
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, revision=revision, token=hub.token(), dtype=torch.float32,
        attn_implementation=config.model.attn_implementation,
    )
    # Needed for exact padding-free batches with sdpa, and saves memory while training.
    model.config.use_cache = False
    return model.to(device), tokenizer  # type: ignore[arg-type]


def save_pretrained(model, tokenizer, folder: Path) -> None:
    """save_pretrained, then text files given one final newline so hooks have nothing to rewrite."""
    folder.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    model.save_pretrained(folder)
    model.config.use_cache = False
    tokenizer.save_pretrained(folder)
    for path in folder.iterdir():
        if path.suffix in (".json", ".txt", ".jinja", ".model") and path.is_file():
            raw = path.read_bytes()
            if raw and not raw.endswith(b"\n") and path.suffix != ".model":
                path.write_bytes(raw.replace(b"\r\n", b"\n") + b"\n")


# --- schedule -----------------------------------------------------------------------------------


def lr_lambda(kind: str, warmup: int, total: int):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 1 - progress) if kind == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(model, t):
    import torch

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.learning_rate)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.learning_rate, momentum=0.9)
    from transformers.optimization import Adafactor

    return Adafactor(groups, lr=t.learning_rate, scale_parameter=False, relative_step=False, warmup_init=False)


# --- loss -----------------------------------------------------------------------------------------


def forward_loss_sum(model, batch: dict, device: str, autocast) -> tuple[Any, int]:
    """Summed next-token cross-entropy over target tokens, and their count."""
    import torch.nn.functional as F

    labels = batch["labels"].to(device)
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    with autocast():
        logits = model(**inputs, use_cache=False).logits
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    loss = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                           ignore_index=D.IGNORE, reduction="sum")
    return loss, int((shift_labels != D.IGNORE).sum())


def heldout_loss(
    model, samples: list[D.Sample], mode: str, pad_id: int, device: str, autocast, batch_size: int
) -> float | None:
    """Mean cross-entropy per target (completion) token on the held-out split."""
    import torch

    if not samples:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for idx in D.plan_batches([len(s.input_ids) for s in samples], batch_size, "grouped", 0):
            loss, n = forward_loss_sum(model, D.collate([samples[i] for i in idx], mode, pad_id), device, autocast)
            total += float(loss)
            count += n
    model.train()
    return total / count if count else None


# --- the run ---------------------------------------------------------------------------------------


def train(ctx: RunContext, config, prepared: Prepared) -> RunResult:
    import torch
    import torch.distributed as dist

    from tunix_rt_torch_sft import plot, tiny

    state = prepared.state
    t = config.training
    quiet_transformers()
    device = resolve_device(t.device)
    distributed = ctx.world_size > 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(ctx.world_size)))
    if distributed:
        if device == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    dev = f"cuda:{local_rank}" if device == "cuda" else "cpu"
    threads = set_threads(t.num_threads, local_world) if device == "cpu" else torch.get_num_threads()
    ctx.environment.update(environment(device, threads))
    autocast = autocast_factory(device, t.dtype)
    torch.manual_seed(config.seed)

    # --- model: a tiny one is built on rank 0, saved, and loaded back by every rank -----------------
    if config.model.tiny is not None:
        model_dir = ctx.run_dir / "init_model"
        prepared.facts["model"]["local_path"] = str(model_dir)
        if ctx.is_main:
            tiny.build(config.model.tiny, state["tokenizer"], state["max_positions"], config.seed, model_dir)
            ctx.log(f"tiny {config.model.tiny.arch} model built and saved: {ctx.relative(model_dir)}")
        if distributed:
            dist.barrier()
        model_ref = str(model_dir)
    else:
        model_ref = config.model.model_id
    model, tokenizer = load_model(config, model_ref, dev)
    n_params = sum(p.numel() for p in model.parameters())
    ctx.log(f"model {model.config.model_type}: {n_params / 1e6:.2f} M parameters, device {dev}, dtype {t.dtype}, "
            f"threads {threads}, world size {ctx.world_size}")

    # --- data ---------------------------------------------------------------------------------
    train_enc = D.encode(state["train"], tokenizer, t.max_seq_length, config.data.completion_only_loss)
    held_enc = D.encode(state["heldout"], tokenizer, t.max_seq_length, config.data.completion_only_loss)
    samples, held = train_enc.samples, held_enc.samples
    ctx.log(f"data: {len(samples)} training samples ({train_enc.truncated} truncated, {train_enc.no_target} without "
            f"a target in {t.max_seq_length} tokens, skipped), {len(held)} held out for eval loss"
            + (f", {len(state['invalid'])} invalid lines skipped" if state["invalid"] else ""))
    lengths = [len(s.input_ids) for s in samples]
    pad_id = tokenizer.pad_token_id

    def epoch_batches(epoch: int) -> list[list[int]]:
        plan = D.plan_batches(lengths, t.batch_size, t.batching, config.seed + epoch, t.group_batches)
        per_rank = len(plan) // ctx.world_size if distributed else len(plan)
        return plan[ctx.rank :: ctx.world_size][:per_rank] if distributed else plan

    micro_per_epoch = len(epoch_batches(0))
    if micro_per_epoch == 0:
        from tunix_rt.errors import TunixError

        raise TunixError(f"too few training samples ({len(samples)}) for {ctx.world_size} process(es)")
    steps_per_epoch = max(1, micro_per_epoch // t.gradient_accumulation_steps)
    # Every target token weighs the same whatever batch it lands in: dividing by each step's own count
    # would give the tokens of short-sample batches (frequent when grouping by length) more weight.
    # The denominator is the mean target count of a step. (While clipping is active every step has the
    # same gradient norm anyway; measured on dev-reasoning-v2 this choice did not change held-out loss.)
    targets_total = sum(sum(1 for x in s.labels[1:] if x != D.IGNORE) for s in samples)
    mean_step_targets = targets_total / max(1, len(lengths)) * t.batch_size * t.gradient_accumulation_steps
    total_steps = t.max_steps or max(1, math.ceil(t.num_epochs * steps_per_epoch))

    def micro_batches():
        epoch = 0
        while True:
            for index, idx in enumerate(epoch_batches(epoch)):
                yield epoch + (index + 1) / micro_per_epoch, idx
            epoch += 1

    # --- optimizer ------------------------------------------------------------------------------
    optimizer = make_optimizer(model, t)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(t.lr_scheduler, t.warmup_steps, total_steps))
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device == "cuda" else None)
    core = model.module if distributed else model
    peak = measure_peak_flops(device, t.dtype)
    ctx.log(f"training: {total_steps} steps ({steps_per_epoch} per epoch), batch {t.batch_size} x accum "
            f"{t.gradient_accumulation_steps} x world {ctx.world_size}, batching {t.batching}, "
            f"measured matmul peak {peak / 1e9:.0f} GFLOP/s ({t.dtype})")

    metrics_path = ctx.run_dir / "metrics.jsonl"
    metrics_file = metrics_path.open("w", encoding="utf-8", newline="\n") if ctx.is_main else None
    history: list[dict[str, Any]] = []
    stream = micro_batches()
    tokens_seen = padded_seen = samples_seen = 0
    window_loss = window_tokens = 0.0
    all_loss = all_tokens = 0.0
    first_loss = None
    epoch = 0.0
    train_time = 0.0
    model.train()
    try:
        for step in range(1, total_steps + 1):
            t_step = time.perf_counter()
            batch_list = [next(stream) for _ in range(t.gradient_accumulation_steps)]
            epoch = batch_list[-1][0]
            collated = [D.collate([samples[i] for i in idx], t.batching, pad_id) for _, idx in batch_list]
            step_targets = sum(int((c["labels"][:, 1:] != D.IGNORE).sum()) for c in collated)
            step_loss = 0.0
            for k, batch in enumerate(collated):
                sync = not distributed or k == len(collated) - 1
                with (nullcontext() if sync else model.no_sync()):
                    loss_sum, _ = forward_loss_sum(model, batch, dev, autocast)
                    (loss_sum / mean_step_targets).backward()
                step_loss += float(loss_sum.detach())
                real = int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
                tokens_seen += real
                padded_seen += batch["input_ids"].numel()
            samples_seen += sum(len(idx) for _, idx in batch_list)
            clip = t.max_grad_norm if t.max_grad_norm is not None else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            lr = scheduler.get_last_lr()[0]
            if distributed:
                totals = torch.tensor([step_loss, float(step_targets)], dtype=torch.float64)
                dist.all_reduce(totals)
                step_loss, step_targets = float(totals[0]), int(totals[1])
            train_time += time.perf_counter() - t_step
            window_loss += step_loss
            window_tokens += step_targets
            all_loss += step_loss
            all_tokens += step_targets
            if first_loss is None:
                first_loss = step_loss / max(1, step_targets)
            rate = tokens_seen * ctx.world_size / train_time if train_time else 0.0
            eta = train_time / step * (total_steps - step)
            ctx.progress(step, total_steps, loss=step_loss / max(1, step_targets), tok_s=rate, eta=eta)
            do_eval = bool(held) and ((t.eval_steps and step % t.eval_steps == 0) or step == total_steps)
            if step % t.logging_steps == 0 or step == total_steps or do_eval:
                line = {
                    "step": step,
                    "epoch": round(epoch, 4),
                    "loss": round(window_loss / max(1, window_tokens), 6),
                    "learning_rate": float(f"{lr:.6g}"),  # six significant digits, like the other columns
                    "grad_norm": round(grad_norm, 6),
                    "tokens_seen": tokens_seen * ctx.world_size,
                    "elapsed_s": round(train_time, 3),
                }
                window_loss = window_tokens = 0.0
                if do_eval:
                    t_eval = time.perf_counter()
                    held_loss = heldout_loss(core, held, t.batching, pad_id, dev, autocast, t.batch_size)
                    line["eval_loss"] = round(held_loss, 6) if held_loss is not None else None
                    line["eval_s"] = round(time.perf_counter() - t_eval, 3)
                history.append(line)
                if metrics_file is not None:
                    metrics_file.write(json.dumps(line) + "\n")
                    metrics_file.flush()
                ctx.log(f"step {step}/{total_steps} epoch {line['epoch']:.2f} loss {line['loss']:.4f} lr {lr:.2e} "
                        f"grad_norm {grad_norm:.3f} tok/s {rate:,.0f}"
                        + (f" eval_loss {line['eval_loss']:.4f}" if "eval_loss" in line else ""))
            if t.save_every_steps and step % t.save_every_steps == 0 and step != total_steps and ctx.is_main:
                folder = ctx.run_dir / "checkpoints" / f"step-{step}"
                save_pretrained(core, tokenizer, folder)
                write_json(folder / "trainer_state.json", {"step": step, "epoch": round(epoch, 4), **history[-1]})
                ctx.log(f"checkpoint: {ctx.relative(folder)}")
    except KeyboardInterrupt:
        if metrics_file is not None:
            metrics_file.close()
            plot.loss_curve(history, ctx.run_dir / "loss_curve.png", title=f"{ctx.run_id} (interrupted)")
        raise

    # --- summary line, final model, curve -----------------------------------------------------------
    mean_context = tokens_seen / max(1, samples_seen)
    fpt = flops_per_token(core, mean_context)
    total_tokens = tokens_seen * ctx.world_size
    final = {
        "step": total_steps,
        "epoch": round(epoch, 4),
        "train_runtime": round(train_time, 3),
        "train_samples_per_second": round(samples_seen * ctx.world_size / train_time, 3),
        "train_steps_per_second": round(total_steps / train_time, 3),
        "train_tokens_per_second": round(total_tokens / train_time, 1),
        "tokens_seen": total_tokens,
        "padding_fraction": round(1 - tokens_seen / max(1, padded_seen), 4),
        "mfu": round(fpt * total_tokens / train_time / (peak * ctx.world_size), 4),
        "peak_flops": round(peak),
        "flops_per_token": round(fpt),
        "train_loss": round(all_loss / max(1, all_tokens), 6),
        "first_loss": round(first_loss, 6) if first_loss is not None else None,
        "final_loss": history[-1]["loss"],
        "eval_loss": next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None),
        "batching": t.batching,
        "dtype": t.dtype,
        "world_size": ctx.world_size,
    }
    result = RunResult(environment=dict(ctx.environment))
    if metrics_file is not None:  # the main process's
        metrics_file.write(json.dumps(final) + "\n")
        metrics_file.close()
        save_pretrained(core, tokenizer, ctx.run_dir / "final_model")
        write_json(ctx.run_dir / "final_model" / "training_state.json", {"run_id": ctx.run_id, **final})
        plot.loss_curve(history, ctx.run_dir / "loss_curve.png", title=ctx.run_id)
        ctx.log(
            f"done: {total_steps} steps in {train_time:.1f} s, {final['train_tokens_per_second']:,.0f} tokens/s, "
            f"loss {final['first_loss']:.4f} -> {final['final_loss']:.4f}, padding {final['padding_fraction']:.1%}, "
            f"MFU {final['mfu']:.1%}"
        )
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    result.metrics = {
        "steps": total_steps,
        "runtime_s": final["train_runtime"],
        "samples_per_s": final["train_samples_per_second"],
        "tokens_per_s": final["train_tokens_per_second"],
        "padding_fraction": final["padding_fraction"],
        "mfu": final["mfu"],
        "loss_first": final["first_loss"],
        "loss_last": final["final_loss"],
        "train_loss": final["train_loss"],
        "eval_loss": final["eval_loss"],
    }
    result.results = [
        f"Steps: {total_steps} ({final['epoch']:.2f} epochs, world size {ctx.world_size})",
        f"Runtime: {train_time:.1f} s",
        f"Samples/s: {final['train_samples_per_second']:.1f}",
        f"Tokens/s: {final['train_tokens_per_second']:,.0f} (non-pad; padding {final['padding_fraction']:.1%}, "
        f"MFU {final['mfu']:.1%})",
        f"Loss: {final['first_loss']:.4f} → {final['final_loss']:.4f} (train_loss {final['train_loss']:.4f})",
    ]
    if final["eval_loss"] is not None:
        result.results.append(f"Held-out eval loss: {final['eval_loss']:.4f}")
    if state["invalid"]:
        result.results.append(f"Invalid lines skipped (data.skip_invalid): {len(state['invalid'])}")
        result.metrics["invalid_lines"] = len(state["invalid"])
    if ctx.is_main and state.get("eval") is not None:
        core.config.use_cache = True
        summary = run_scored_eval(ctx, config, core, tokenizer, state, dev, autocast)
        result.metrics.update(eval_metrics(summary))
        result.results.append(eval_line(summary))
    return result


def run_scored_eval(ctx: RunContext, config, model, tokenizer, state, device, autocast) -> dict[str, Any]:
    from tunix_rt_torch_sft import evaluate

    loaded = state["eval"]
    meta = {
        "run_id": ctx.run_id,
        "eval_set": {"path": ctx.relative(loaded.path), "sha256": loaded.sha256, "n_items": len(loaded.records)},
        # Paths are stored relative to the repository, like every path in the evidence.
        "model": {k: ctx.relative(Path(v)) if k == "local_path" else v for k, v in state["model_ref"].items()},
        "invalid_lines": loaded.invalid,
    }
    return evaluate.run(model, tokenizer, loaded.records, config.eval, device, autocast, ctx.run_dir, meta, ctx.log)


def eval_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    t = summary["totals"]
    return {
        "eval_accuracy": summary["primary_score"],
        "eval_exact": t["exact"],
        "eval_normalised": t["normalised"],
        "eval_contains": t["contains"],
        "n_eval": t["n"],
    }


def eval_line(summary: dict[str, Any]) -> str:
    t = summary["totals"]
    return (f"Eval accuracy: {t['normalised']}/{t['n']} ({summary['primary_score']:.1%}) normalised; "
            f"exact {t['exact']}/{t['n']}, contains {t['contains']}/{t['n']}")


def evaluate_only(ctx: RunContext, config, prepared: Prepared) -> RunResult:
    """`run eval`: load a trained model, generate, score."""
    import torch

    state = prepared.state
    device = resolve_device(config.training.device)
    if ctx.world_size > 1 and not ctx.is_main:
        return RunResult()  # generation is not sharded: rank 0 evaluates everything
    threads = set_threads(config.training.num_threads, 1) if device == "cpu" else torch.get_num_threads()
    ctx.environment.update(environment(device, threads))
    autocast = autocast_factory(device, config.training.dtype)
    torch.manual_seed(config.seed)
    model, tokenizer = load_model(config, config.model.model_id, device)
    model.config.use_cache = True
    ctx.log(
        f"model {ctx.relative(Path(config.model.model_id)) if Path(config.model.model_id).exists() else config.model.model_id}"  # noqa: E501
        f" loaded on {device}"
    )
    summary = run_scored_eval(ctx, config, model, tokenizer, state, device, autocast)
    return RunResult(metrics=eval_metrics(summary), results=[eval_line(summary)], environment=dict(ctx.environment))
