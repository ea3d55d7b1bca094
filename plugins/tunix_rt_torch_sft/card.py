"""The model card of a trained model: `final_model/README.md` in the Hugging Face format, read from the run's evidence.

huggingface_hub's `ModelCardData`/`EvalResult` render the YAML front matter (`model-index` with the measured results,
`base_model` or the tiny architecture, `library_name`), so the hub and `ModelCard.load` read it back as they read any
card; nothing here touches the network. The numbers come from the files the run already wrote (metrics.jsonl's final
line, eval_summary.json, the dataset hashes of the manifest facts), so the card never says more than the evidence.
It is written before the core hashes the folder, so artifacts.json covers it. No environment value (HF_TOKEN) is
read, and the text goes through the evidence writer, which redacts secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt import evidence
from tunix_rt.plugins import RunContext
from tunix_rt.scoring import METRICS, PRIMARY_METRIC

CARD = "README.md"
TASK = "text-generation"
# The datasets builder that reads a local JSONL file; the file itself is dataset.name, pinned by its sha256 as
# dataset.revision (the model-index field for "which version of the data").
DATASET_TYPE = "json"
HELDOUT_SPLIT = "heldout"


@dataclass
class Evidence:
    """What the card reports, read back from the run folder and the run's facts."""

    run_id: str
    milestone: str
    run_dir: str  # relative to the repository
    datasets: list[evidence.DatasetRef]  # the manifest's dataset facts, paths relative
    model: evidence.ModelRef
    final: evidence.FinalMetrics
    summary: evidence.EvalSummary | None


def write(ctx: RunContext, config: Any, facts: dict[str, Any]) -> Path:
    """Renders and writes final_model/README.md; returns its path."""
    found = collect(ctx, facts)
    path = ctx.run_dir / "final_model" / CARD
    evidence.write_text(path, render(found, config, ctx))
    return path


def collect(ctx: RunContext, facts: dict[str, Any]) -> Evidence:
    final = evidence.read_metrics(ctx.run_dir / evidence.METRICS).final
    if final is None:
        raise ValueError("metrics.jsonl has no final line: the model card is written after it")
    summary_path = ctx.run_dir / evidence.EVAL_SUMMARY
    summary = (evidence.EvalSummary.model_validate_json(summary_path.read_bytes()) if summary_path.is_file()
               else None)
    datasets = [evidence.DatasetRef(**{**d, "path": ctx.relative(Path(d["path"]))}) for d in facts["datasets"]]
    model = evidence.ModelRef(**{k: ctx.relative(Path(v)) if k == "local_path" else v
                                 for k, v in facts["model"].items()})
    return Evidence(ctx.run_id, ctx.milestone, ctx.relative(ctx.run_dir), datasets, model, final, summary)


# --- metadata ---------------------------------------------------------------------------------------------------


def eval_results(found: Evidence) -> list[Any]:
    """The measured results: the scored eval's rates on the eval set, and the held-out loss on the training file."""
    from huggingface_hub import EvalResult

    results = []
    if found.summary is not None and found.summary.eval_set is not None:
        eval_set, totals = found.summary.eval_set, found.summary.totals
        for name in METRICS:
            rate = getattr(totals, f"{name}_rate")
            if rate is None:
                continue
            label = f"{name} match rate" + (" (primary)" if name == PRIMARY_METRIC else "")
            results.append(EvalResult(task_type=TASK, dataset_type=DATASET_TYPE, dataset_name=eval_set.path,
                                      dataset_split="test", dataset_revision=eval_set.sha256, metric_type=name,
                                      metric_value=rate, metric_name=f"{label}, {totals.n} items"))
    train = next((d for d in found.datasets if d.role == "train"), None)
    if found.final.eval_loss is not None and train is not None:
        results.append(EvalResult(task_type=TASK, dataset_type=DATASET_TYPE, dataset_name=train.path,
                                  dataset_split=HELDOUT_SPLIT, dataset_revision=train.sha256, metric_type="loss",
                                  metric_value=found.final.eval_loss,
                                  metric_name="held-out loss (mean cross-entropy per target token)"))
    return results


def base_license(config: Any) -> str | None:
    """The base model's license when its own card is on this disk (a local folder, or the hub cache); else None."""
    from huggingface_hub import ModelCard

    model = config.model
    if model.tiny is not None:
        return None
    if Path(model.model_id).exists():
        readme = Path(model.model_id) / CARD
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model.model_id, CARD, revision=model.revision)
        readme = Path(cached) if isinstance(cached, str) else Path(model.model_id, CARD)
    if not readme.is_file():
        return None
    try:
        license_ = ModelCard.load(readme, ignore_metadata_errors=True).data.license
    except (OSError, ValueError):  # an unreadable base card leaves the license unknown, it does not fail the run
        return None
    return license_ if isinstance(license_, str) else None


def card_data(found: Evidence, config: Any) -> Any:
    from huggingface_hub import ModelCardData

    lora = config.training.lora is not None
    extra: dict[str, Any] = {}
    if config.model.tiny is not None:
        base = found.model.local_path if lora else None  # an adapter needs its (random-init) base folder
        extra["tiny_model"] = {**config.model.tiny.model_dump(mode="json"), "init": "random"}
    else:
        base = found.model.id or found.model.local_path
    results = eval_results(found)
    return ModelCardData(
        base_model=base,
        library_name="peft" if lora else "transformers",  # an adapter folder loads through peft
        license=base_license(config),
        pipeline_tag=TASK,
        tags=["tunix-rt", "torch-sft", "sft", *(["lora"] if lora else [])],
        model_name=found.run_id if results else None,
        eval_results=results or None,
        **extra,
    )


# --- body -------------------------------------------------------------------------------------------------------


def _value(value: Any, ctx: RunContext) -> str:
    if isinstance(value, Path):
        return f"`{ctx.relative(value)}`"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return f"`{value}`" if isinstance(value, str) else str(value)


def config_rows(config: Any, ctx: RunContext) -> list[tuple[str, str]]:
    """The resolved config's keys that decide what was trained, paths relative to the repository."""
    rows = []
    if config.model.tiny is not None:
        rows.append(("model.tiny", _value(config.model.tiny.model_dump(mode="json"), ctx)))
    else:
        local = Path(config.model.model_id).exists()
        rows.append(("model.model_id", _value(Path(config.model.model_id) if local else config.model.model_id, ctx)))
        if not local:
            rows.append(("model.revision", _value(config.model.revision or "main", ctx)))
    for key in ("train", "eval", "eval_split", "completion_only_loss"):
        value = getattr(config.data, key)
        if value is not None:
            rows.append((f"data.{key}", _value(value, ctx)))
    t = config.training
    for key in ("max_steps", "num_epochs", "batch_size", "gradient_accumulation_steps", "max_seq_length",
                "batching", "learning_rate", "lr_scheduler", "warmup_steps", "weight_decay", "optimizer",
                "max_grad_norm", "dtype", "device"):
        value = getattr(t, key)
        if value is not None and not (key == "num_epochs" and t.max_steps):
            rows.append((f"training.{key}", _value(value, ctx)))
    if t.lora is not None:
        rows.append(("training.lora", _value(t.lora.model_dump(mode="json"), ctx)))
    rows.append(("seed", str(config.seed)))
    return rows


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def body(found: Evidence, config: Any, ctx: RunContext) -> str:
    f, lora = found.final, config.training.lora is not None
    if config.model.tiny is not None:
        spec = config.model.tiny
        layers = f"{spec.n_layer} layer" + ("s" if spec.n_layer != 1 else "")
        origin = (f"a tiny random-init {spec.arch} ({layers}, hidden size {spec.n_embd}, {spec.n_head} heads, "
                  f"vocabulary {spec.vocab_size}) with a byte-level BPE tokenizer trained on the training text")
    else:
        origin = f"the base model `{found.model.id or found.model.local_path}`"
    what = "LoRA adapters (peft) on" if lora else "a fine-tune of"
    lines = [
        f"# {found.run_id}",
        "",
        f"Supervised fine-tuning run `{found.run_id}` of milestone {found.milestone}, trained by tunix-rt's torch-sft "
        f"plugin: {what} {origin}.",
        "",
        "## Evidence",
        "",
        f"Everything below is read from the run's evidence folder `{found.run_dir}/` (paths relative to the repository "
        f"root): `run_manifest.json` (command, git commit, data hashes), `config.yaml`, `metrics.jsonl`, "
        f"`env_snapshot.json` and `artifacts.json`, which hashes every file, this card included "
        f"(`milestone verify {found.run_id}` checks them).",
        "",
        "## Training data",
        "",
        *_table(("role", "path", "records", "sha256"),
                [(d.role, f"`{d.path}`", str(d.records), f"`{d.sha256}`") for d in found.datasets]),
        "",
        "## Training config",
        "",
        *_table(("key", "value"), config_rows(config, ctx)),
        "",
        "## Training results",
        "",
        "From the final line of `metrics.jsonl`:",
        "",
        *_table(("steps", "epochs", "first loss", "final loss", "train loss", "tokens/s", "runtime (s)", "MFU"),
                [(str(f.step), f"{f.epoch:.2f}", f"{f.first_loss:.4f}", f"{f.final_loss:.4f}", f"{f.train_loss:.4f}",
                  f"{f.train_tokens_per_second:,.0f}", f"{f.train_runtime:.1f}", f"{f.mfu:.1%}")]),
        "",
        "## Evaluation",
        "",
        *evaluation_lines(found),
        "",
        "## Loading",
        "",
        "```python",
        *loading_lines(f"{found.run_dir}/final_model", lora),
        "```",
    ]
    return "\n".join(lines)


def loading_lines(folder: str, lora: bool) -> list[str]:
    if lora:
        return ["from peft import AutoPeftModelForCausalLM", "",
                f'model = AutoPeftModelForCausalLM.from_pretrained("{folder}")']
    return ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f'model = AutoModelForCausalLM.from_pretrained("{folder}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{folder}")']


def evaluation_lines(found: Evidence) -> list[str]:
    lines = []
    s = found.summary
    if s is not None and s.eval_set is not None:
        t = s.totals
        lines.append(f"Scored greedy generation on `{s.eval_set.path}` (sha256 `{s.eval_set.sha256}`, {t.n} items; "
                     f"`eval_summary.json`, `predictions.jsonl`): "
                     + ", ".join(f"{name} {getattr(t, name)}/{t.n}" + (" (primary)" if name == PRIMARY_METRIC else "")
                                 for name in METRICS if getattr(t, name) is not None) + ".")
    else:
        lines.append("This run did not run a scored evaluation (its config has no `data.eval`), so `model-index` "
                     "carries no scored results.")
    if found.final.eval_loss is not None:
        lines += ["", f"Held-out loss on the `{HELDOUT_SPLIT}` split of the training file: "
                      f"{found.final.eval_loss:.4f} (mean cross-entropy per target token)."]
    if (s is None or s.eval_set is None) and found.final.eval_loss is None:
        lines[0] = ("This run did not evaluate the model (no `data.eval`, nothing held out): the card has no "
                    "`model-index`.")
    return lines


def render(found: Evidence, config: Any, ctx: RunContext) -> str:
    """The whole card: huggingface_hub renders the front matter; the body is ours."""
    from huggingface_hub import ModelCard

    data = card_data(found, config)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body(found, config, ctx)}\n"))
