"""The scored-eval entry points: `run eval` on a saved model, and the eval a training run does on its final model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunix_rt.plugins import Prepared, RunContext, RunResult
from tunix_rt_torch_sft import evaluate, modeling
from tunix_rt_torch_sft import runtime as rt
from tunix_rt_torch_sft.prepare import RunState


def run_scored_eval(ctx: RunContext, config: Any, model: Any, tokenizer: Any, state: RunState,
                    runtime: rt.Runtime) -> dict[str, Any]:
    """Generates, scores and writes predictions.jsonl and eval_summary.json into the run folder."""
    loaded = state.eval
    assert loaded is not None
    meta = {
        "run_id": ctx.run_id,
        "eval_set": {"path": ctx.relative(loaded.path), "sha256": loaded.sha256, "n_items": len(loaded.records)},
        # Paths are stored relative to the repository, like every path in the evidence.
        "model": {k: ctx.relative(Path(v)) if k == "local_path" else v for k, v in state.model_ref.items()},
        "invalid_lines": loaded.invalid,
    }
    modeling.hf_model(model).config.use_cache = True
    return evaluate.run(model, tokenizer, loaded.records, config.eval, runtime.dev, runtime.autocast, ctx.run_dir,
                        meta, ctx.log)


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


def evaluate_only(ctx: RunContext, config: Any, prepared: Prepared) -> RunResult:
    """`run eval`: load a trained model, generate, score (rank 0 alone: generation is not sharded)."""
    import torch

    if ctx.world_size > 1 and not ctx.is_main:
        return RunResult()
    device = rt.resolve_device(config.training.device)
    threads = rt.set_threads(config.training.num_threads, 1) if device == "cpu" else torch.get_num_threads()
    runtime = rt.Runtime(device=device, dev=device, rank=0, world_size=1, local_rank=0, threads=threads,
                         dtype=config.training.dtype, autocast=rt.autocast_factory(device, config.training.dtype))
    ctx.environment.update(rt.environment(device, threads))
    torch.manual_seed(config.seed)
    model_id = config.model.model_id
    local = Path(model_id).exists()
    model, tokenizer = load_for_eval(model_id, None if local else config.model.revision,
                                     config.model.attn_implementation, device)
    ctx.log(f"model {ctx.relative(Path(model_id)) if local else model_id} loaded on {device}")
    summary = run_scored_eval(ctx, config, model, tokenizer, prepared.state, runtime)
    return RunResult(metrics=eval_metrics(summary), results=[eval_line(summary)], environment=dict(ctx.environment))


def load_for_eval(model_id: str, revision: str | None, attn: str, device: str) -> tuple[Any, Any]:
    """A full model folder, or a LoRA adapter folder (adapter_config.json) loaded onto its base model by peft."""
    if (Path(model_id) / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM
        from transformers import AutoTokenizer

        modeling.quiet_transformers()
        model = AutoPeftModelForCausalLM.from_pretrained(model_id).to(device)
        return model, AutoTokenizer.from_pretrained(model_id)
    return modeling.load_model(model_id, revision, attn, device)
