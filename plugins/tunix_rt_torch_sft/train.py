"""The SFT loop, top to bottom: runtime, model, batches, optimizer, the loop, the final line, the saved model,
scored eval, the model card.

A plain loop (no Trainer). Each random micro-batch is packed into rows of at most `max_seq_length`
(or padded, or flattened, as configured); the loss is summed over completion tokens and divided by
the mean target-token count of a step; one metrics.jsonl line per logging step is written as it
happens, and a last line marked `final: true`. Under torchrun it runs DDP or FSDP2 (gloo on CPU,
NCCL on GPUs); rank 0 alone writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import IO, Any

from tunix_rt.errors import TunixError, WorkFailed
from tunix_rt.evidence import write_json
from tunix_rt.plugins import Prepared, RunContext, RunResult
from tunix_rt_torch_sft import data as D
from tunix_rt_torch_sft import card, modeling, plot, scored_eval
from tunix_rt_torch_sft import runtime as rt
from tunix_rt_torch_sft.meter import Meter, Peak, flops_per_token, matmul_trials, measure_peak
from tunix_rt_torch_sft.prepare import RunState
from tunix_rt_torch_sft.records import FinalLine, StepLine, write_metrics_line


def train(ctx: RunContext, config: Any, prepared: Prepared) -> RunResult:
    import torch

    state: RunState = prepared.state
    t = config.training
    modeling.quiet_transformers()
    runtime = rt.start(ctx, t.device, t.num_threads, t.dtype)
    ctx.environment.update(rt.environment(runtime.device, runtime.threads))
    torch.manual_seed(config.seed)
    model, tokenizer = build_model(ctx, config, state, prepared.facts, runtime)
    batches = Batches.plan(ctx, config, state, tokenizer, runtime)
    module = modeling.parallelize(_objective(model), runtime, t.strategy)
    step_fn = torch.compile(module) if t.compile else module
    optimizer, scheduler = _optimizer(module, t, batches.total_steps)
    peak_start = matmul_trials(runtime.dev, t.dtype)
    ctx.log(
        f"training: {batches.total_steps} steps ({batches.steps_per_epoch} per epoch), batch {t.batch_size} x "
        f"accum {t.gradient_accumulation_steps} x world {ctx.world_size}"
        + (f" ({t.strategy})" if runtime.distributed else "")
        + f", batching {t.batching}, "
        f"matmul peak at start {max(peak_start) / 1e9:.0f} GFLOP/s ({t.dtype})"
    )
    meter, history = Meter(), []
    metrics = (ctx.run_dir / "metrics.jsonl").open("w", encoding="utf-8", newline="\n") if ctx.is_main else None
    stream = batches.stream()
    try:
        for step in range(1, batches.total_steps + 1):
            began = time.perf_counter()
            micro = [next(stream) for _ in range(t.gradient_accumulation_steps)]
            loss_sum, targets, grad_norm = train_step(step_fn, micro, optimizer, scheduler, runtime, t, batches)
            meter.add(
                loss_sum,
                targets,
                sum(m.tokens for m in micro),
                sum(m.slots for m in micro),
                sum(m.samples for m in micro),
                time.perf_counter() - began,
            )
            if not (math.isfinite(meter.last_loss) and math.isfinite(grad_norm)):
                raise WorkFailed(
                    f"loss {meter.last_loss}, gradient norm {grad_norm} at step {step}: training "
                    f"diverged (learning_rate {t.learning_rate}, dtype {t.dtype})"
                )
            ctx.progress(
                step,
                batches.total_steps,
                loss=meter.last_loss,
                tok_s=meter.tokens_per_s(ctx.world_size),
                eta=meter.seconds / step * (batches.total_steps - step),
            )
            do_eval = bool(batches.held) and (
                (t.eval_steps and step % t.eval_steps == 0) or step == batches.total_steps
            )
            if step % t.logging_steps == 0 or step == batches.total_steps or do_eval:
                line = step_line(step, micro[-1].epoch, meter, scheduler, grad_norm, ctx.world_size)
                if do_eval:
                    began = time.perf_counter()
                    line.eval_loss = _heldout(module, batches, runtime, t.batch_size)
                    line.eval_s = round(time.perf_counter() - began, 3)
                history.append(line)
                if metrics is not None:
                    write_metrics_line(metrics, line)
                ctx.log(
                    f"step {step}/{batches.total_steps} epoch {line.epoch:.2f} loss {line.loss:.4f} lr "
                    f"{line.learning_rate:.2e} grad_norm {grad_norm:.3f} "
                    f"tok/s {meter.tokens_per_s(ctx.world_size):,.0f}"
                    + (f" eval_loss {line.eval_loss:.4f}" if line.eval_loss is not None else "")
                )
            if t.save_every_steps and step % t.save_every_steps == 0 and step != batches.total_steps:
                checkpoint(ctx, module, model, tokenizer, runtime, t.strategy, history[-1] if history else None, step)
    except (KeyboardInterrupt, WorkFailed):
        if metrics is not None:
            metrics.close()
            plot.loss_curve([vars(h) for h in history], ctx.run_dir / "loss_curve.png", title=f"{ctx.run_id} (stopped)")
        raise
    final = final_line(config, meter, history, measure_peak(runtime.dev, t.dtype, peak_start), model, ctx.world_size)
    finish(ctx, metrics, final, history, module, model, tokenizer, runtime, t.strategy)
    result = run_result(final, state)
    result.environment = dict(ctx.environment)
    if ctx.is_main and state.eval is not None:
        summary = scored_eval.run_scored_eval(ctx, config, model, tokenizer, state, runtime)
        result.metrics.update(scored_eval.eval_metrics(summary))
        result.results.append(scored_eval.eval_line(summary))
    if ctx.is_main:  # after the eval it reports, before the core hashes the folder into artifacts.json
        card.write(ctx, config, prepared.facts)
    return result


# --- model and batches ------------------------------------------------------------------------------


def build_model(
    ctx: RunContext, config: Any, state: RunState, facts: dict[str, Any], runtime: rt.Runtime
) -> tuple[Any, Any]:
    """A tiny model is built and saved by rank 0 and loaded back by every rank; LoRA adapters added if configured."""
    from pathlib import Path

    from tunix_rt_torch_sft import tiny

    if config.model.tiny is not None:
        model_dir = ctx.run_dir / "init_model"
        facts["model"]["local_path"] = str(model_dir)
        if ctx.is_main:
            tiny.build(config.model.tiny, state.tokenizer, state.max_positions, config.seed, model_dir)
            ctx.log(f"tiny {config.model.tiny.arch} model built and saved: {ctx.relative(model_dir)}")
        runtime.barrier()
        ref, revision = str(model_dir), None
    else:
        ref = config.model.model_id
        revision = None if Path(ref).exists() else config.model.revision
    model, tokenizer = modeling.load_model(ref, revision, config.model.attn_implementation, runtime.dev)
    if config.training.lora is not None:
        model = modeling.add_lora(model, config.training.lora)
        if Path(ref).exists():  # the adapter names its base model relative to the repository, like all evidence
            model.peft_config["default"].base_model_name_or_path = ctx.relative(Path(ref))
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ctx.log(
        f"model {modeling.hf_model(model).config.model_type}: {total / 1e6:.2f} M parameters"
        + (f" ({trained / 1e6:.3f} M trained, LoRA)" if trained != total else "")
        + f", device {runtime.dev}, dtype {runtime.dtype}, threads {runtime.threads}, world size {ctx.world_size}"
    )
    return model, tokenizer


@dataclass
class Micro:
    """One micro-batch ready for the model, with what the meter counts."""

    epoch: float
    inputs: dict[str, Any]
    tokens: int  # real tokens
    slots: int  # positions computed, pads included
    samples: int


@dataclass
class Batches:
    """The training samples of this rank, how they are batched, and how many steps the run takes."""

    samples: list[D.Sample]
    held: list[D.Sample]
    mode: str
    capacity: int
    pad_id: int
    batch_size: int
    group_batches: int
    seed: int
    rank: int
    world_size: int
    micro_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    mean_step_targets: float  # the loss denominator (see plan)

    @classmethod
    def plan(cls, ctx: RunContext, config: Any, state: RunState, tokenizer: Any, runtime: rt.Runtime) -> Batches:
        t = config.training
        train_enc = D.encode(state.train, tokenizer, t.max_seq_length, config.data.completion_only_loss)
        held = D.encode(state.heldout, tokenizer, t.max_seq_length, config.data.completion_only_loss).samples
        samples = train_enc.samples
        ctx.log(
            f"data: {len(samples)} training samples ({train_enc.truncated} truncated, {train_enc.no_target} "
            f"without a target in {t.max_seq_length} tokens, skipped), {len(held)} held out for eval loss"
            + (f", {len(state.invalid)} invalid lines skipped" if state.invalid else "")
        )
        batches = cls(
            samples,
            held,
            t.batching,
            t.max_seq_length,
            tokenizer.pad_token_id,
            t.batch_size,
            t.group_batches,
            config.seed,
            runtime.rank,
            runtime.world_size,
            0,
            0,
            0,
            0.0,
        )
        batches.micro_per_epoch = len(batches.epoch(0))
        if batches.micro_per_epoch == 0:
            raise TunixError(f"too few training samples ({len(samples)}) for {ctx.world_size} process(es)")
        batches.steps_per_epoch = max(1, batches.micro_per_epoch // t.gradient_accumulation_steps)
        batches.total_steps = t.max_steps or max(1, math.ceil(t.num_epochs * batches.steps_per_epoch))
        # Every target token weighs the same whatever batch it lands in: dividing by each step's own count would
        # give the tokens of short-sample batches more weight. The denominator is the mean target count of a step.
        targets = sum(sum(1 for x in s.labels[1:] if x != D.IGNORE) for s in samples)
        batches.mean_step_targets = targets / max(1, len(samples)) * t.batch_size * t.gradient_accumulation_steps
        return batches

    def epoch(self, number: int) -> list[list[int]]:
        """This rank's micro-batches (sample indices) of one epoch; every rank gets the same count."""
        plan = D.plan_batches(
            [len(s.input_ids) for s in self.samples], self.batch_size, self.mode, self.seed + number, self.group_batches
        )
        return plan[self.rank :: self.world_size][: len(plan) // self.world_size]

    def stream(self) -> Iterator[Micro]:
        number = 0
        while True:
            for index, idx in enumerate(self.epoch(number)):
                chosen = [self.samples[i] for i in idx]
                inputs = D.collate(chosen, self.mode, self.pad_id, self.capacity)
                yield Micro(
                    number + (index + 1) / self.micro_per_epoch,
                    inputs,
                    D.real_tokens(chosen),
                    inputs["input_ids"].numel(),
                    len(chosen),
                )
            number += 1


# --- one step -----------------------------------------------------------------------------------------


def train_step(
    module: Any, micro: list[Micro], optimizer: Any, scheduler: Any, runtime: rt.Runtime, t: Any, batches: Batches
) -> tuple[float, int, float]:
    """Forward and backward over the micro-batches (gradients synced on the last), clip, update.

    Returns the step's summed loss and target count (over all ranks) and the gradient norm before clipping.
    """
    import torch

    from tunix_rt_torch_sft.loss import batch_loss

    loss_total, targets = 0.0, 0
    for k, m in enumerate(micro):
        with _no_sync(module, runtime, last=k == len(micro) - 1):
            loss_sum, count = batch_loss(module, m.inputs, runtime.dev, runtime.autocast)
            (loss_sum / batches.mean_step_targets).backward()
        loss_total += float(loss_sum.detach())
        targets += count
    clip = t.max_grad_norm if t.max_grad_norm is not None else float("inf")
    norm = torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], clip)
    grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP2 gives a DTensor
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    loss_total, total_targets = runtime.all_sum(loss_total, float(targets))
    return loss_total, int(total_targets), grad_norm


def _no_sync(module: Any, runtime: rt.Runtime, last: bool) -> Any:
    """Skips the gradient all-reduce on every micro-batch but the last (DDP no_sync, FSDP2 requires_gradient_sync)."""
    if not runtime.distributed:
        return nullcontext()
    if hasattr(module, "no_sync"):
        return nullcontext() if last else module.no_sync()
    module.set_requires_gradient_sync(last)
    return nullcontext()


def _objective(model: Any) -> Any:
    from tunix_rt_torch_sft.loss import TargetLoss

    return TargetLoss(model)


def _optimizer(module: Any, t: Any, total_steps: int) -> tuple[Any, Any]:
    from tunix_rt_torch_sft.optim import make_optimizer

    return make_optimizer(module, t, total_steps)


def _heldout(module: Any, batches: Batches, runtime: rt.Runtime, batch_size: int) -> float | None:
    from tunix_rt_torch_sft.loss import heldout_loss

    inner = module.module if hasattr(module, "no_sync") else module  # DDP: skip the wrapper's reducer hooks
    loss = heldout_loss(inner, batches.held, runtime.dev, runtime.autocast, batch_size, batches.pad_id)
    return round(loss, 6) if loss is not None else None


# --- lines, checkpoints, the end ------------------------------------------------------------------------


def step_line(step: int, epoch: float, meter: Meter, scheduler: Any, grad_norm: float, world_size: int) -> StepLine:
    return StepLine(
        step=step,
        epoch=round(epoch, 4),
        loss=round(meter.window_loss(), 6),
        learning_rate=float(f"{scheduler.get_last_lr()[0]:.6g}"),
        grad_norm=round(grad_norm, 6),
        tokens_seen=meter.tokens * world_size,
        elapsed_s=round(meter.seconds, 3),
    )


def final_line(config: Any, meter: Meter, history: list[StepLine], peak: Peak, model: Any, world: int) -> FinalLine:
    t = config.training
    fpt = flops_per_token(modeling.hf_model(model), meter.tokens / max(1, meter.samples))
    seconds = max(meter.seconds, 1e-9)
    return FinalLine(
        step=history[-1].step,
        epoch=history[-1].epoch,
        train_runtime=round(meter.seconds, 3),
        train_samples_per_second=round(meter.samples * world / seconds, 3),
        train_steps_per_second=round(history[-1].step / seconds, 3),
        train_tokens_per_second=round(meter.tokens_per_s(world), 1),
        tokens_seen=meter.tokens * world,
        padding_fraction=round(meter.padding_fraction(), 4),
        mfu=round(meter.mfu(fpt, peak, world), 4),
        peak_flops=round(peak.flops),
        peak_method=peak.method,
        flops_per_token=round(fpt),
        train_loss=round(meter.loss_sum / max(1, meter.targets), 6),
        first_loss=round(meter.first_loss or 0.0, 6),
        final_loss=history[-1].loss,
        eval_loss=next((h.eval_loss for h in reversed(history) if h.eval_loss is not None), None),
        batching=t.batching,
        dtype=t.dtype,
        world_size=world,
        strategy=t.strategy if world > 1 else "single",
    )


def checkpoint(
    ctx: RunContext,
    module: Any,
    model: Any,
    tokenizer: Any,
    runtime: rt.Runtime,
    strategy: str,
    last: StepLine | None,
    step: int,
) -> None:
    """Weights + a JSON sidecar under checkpoints/step-N (every rank joins: FSDP gathers the shards)."""
    folder = ctx.run_dir / "checkpoints" / f"step-{step}"
    save_model(module, model, tokenizer, runtime, strategy, folder, ctx.is_main)
    if ctx.is_main:
        write_json(folder / "trainer_state.json", {"step": step, **(vars(last) if last else {})})
        ctx.log(f"checkpoint: {ctx.relative(folder)}")


def save_model(
    module: Any, model: Any, tokenizer: Any, runtime: rt.Runtime, strategy: str, folder: Any, main: bool
) -> None:
    if runtime.distributed and strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if main:
            prefix = "model."  # TargetLoss holds the model as `.model`
            state = {k[len(prefix) :]: v for k, v in full.items() if k.startswith(prefix)}
            for alias in modeling.tied_aliases(model):
                state.pop(alias, None)  # a tied weight (lm_head = embeddings) is stored once
            modeling.save_pretrained(model, tokenizer, folder, state)
        return
    if main:
        modeling.save_pretrained(model, tokenizer, folder)


def finish(
    ctx: RunContext,
    metrics: IO[str] | None,
    final: FinalLine,
    history: list[StepLine],
    module: Any,
    model: Any,
    tokenizer: Any,
    runtime: rt.Runtime,
    strategy: str,
) -> None:
    """The final line, final_model/ with its JSON sidecar, the loss curve; then the process group is left."""
    save_model(module, model, tokenizer, runtime, strategy, ctx.run_dir / "final_model", ctx.is_main)
    if metrics is not None:
        write_metrics_line(metrics, final)
        metrics.close()
        write_json(ctx.run_dir / "final_model" / "training_state.json", {"run_id": ctx.run_id, **vars(final)})
        plot.loss_curve([vars(h) for h in history], ctx.run_dir / "loss_curve.png", title=ctx.run_id)
        ctx.log(
            f"done: {final.step} steps in {final.train_runtime:.1f} s, {final.train_tokens_per_second:,.0f} "
            f"tokens/s, loss {final.first_loss:.4f} -> {final.final_loss:.4f}, padding "
            f"{final.padding_fraction:.1%}, MFU {final.mfu:.1%} ({final.peak_method})"
        )
    runtime.close()


def run_result(final: FinalLine, state: RunState) -> RunResult:
    """The ledger's headline metrics and the entry's Results lines."""
    metrics: dict[str, Any] = {
        "steps": final.step,
        "runtime_s": final.train_runtime,
        "samples_per_s": final.train_samples_per_second,
        "tokens_per_s": final.train_tokens_per_second,
        "padding_fraction": final.padding_fraction,
        "mfu": final.mfu,
        "loss_first": final.first_loss,
        "loss_last": final.final_loss,
        "train_loss": final.train_loss,
        "eval_loss": final.eval_loss,
    }
    results = [
        f"Steps: {final.step} ({final.epoch:.2f} epochs, world size {final.world_size})",
        f"Runtime: {final.train_runtime:.1f} s",
        f"Samples/s: {final.train_samples_per_second:.1f}",
        (
            f"Tokens/s: {final.train_tokens_per_second:,.0f} (non-pad; padding {final.padding_fraction:.1%}, "
            f"MFU {final.mfu:.1%})"
        ),
        f"Loss: {final.first_loss:.4f} → {final.final_loss:.4f} (train_loss {final.train_loss:.4f})",
    ]
    if final.eval_loss is not None:
        results.append(f"Held-out eval loss: {final.eval_loss:.4f}")
    if state.invalid:
        results.append(f"Invalid lines skipped (data.skip_invalid): {len(state.invalid)}")
        metrics["invalid_lines"] = len(state.invalid)
    return RunResult(metrics=metrics, results=results)
