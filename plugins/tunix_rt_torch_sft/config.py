"""The torch-sft config (pydantic, every field documented) and its cheap validation; imports no torch.

It accepts the hand-run project's PyTorch config keys (`model.model_id`, `model.revision`,
`training.device|batch_size|max_seq_length|...`) plus data paths, steps, batching, seed and an
eval block. Unknown keys, wrong types and missing files are refused with the key named.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunix_rt.errors import TunixError

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


class _Strict(BaseModel):
    # allow_inf_nan=False: an infinite learning rate or a NaN weight decay is refused here, not found as a NaN loss.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TinyModel(_Strict):
    """A small random-init model built offline, with a byte-level BPE tokenizer trained on the training text."""

    arch: Literal["gpt2", "llama"] = Field(description="Architecture: gpt2 or llama.")
    n_layer: int = Field(2, ge=1, le=48, description="Transformer blocks.")
    n_embd: int = Field(128, ge=8, le=4096, description="Hidden size.")
    n_head: int = Field(4, ge=1, le=64, description="Attention heads (must divide n_embd).")
    vocab_size: int = Field(1024, ge=300, le=65536, description="BPE vocabulary size (byte-level alphabet is 256).")

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModel:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        return self


class ModelConfig(_Strict):
    """Exactly one of `model_id` (hub id or local folder) and `tiny`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())
    model_id: str | None = Field(None, description="Hub id (org/name) or a local folder saved with save_pretrained.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit); ignored for local folders.")
    tiny: TinyModel | None = Field(None, description="Build a small random-init model instead (offline).")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa", description="Attention kernel; flash_attention_2 (GPU, flash-attn installed) runs packed rows varlen."
    )


class DataConfig(_Strict):
    train: Path | None = Field(None, description="JSONL reasoning traces (prompt, steps, final_answer, meta).")
    eval: Path | None = Field(
        None, description="JSONL eval items (id, prompt, expected_answer, section, category, difficulty)."
    )
    eval_split: float = Field(
        0.05, ge=0.0, lt=0.5, description="Fraction of distinct training prompts held out for eval loss."
    )
    skip_invalid: bool = Field(False, description="Count and report malformed lines instead of refusing the dataset.")
    completion_only_loss: bool = Field(
        True, description="Loss on the reasoning steps + answer + EOS only, not the prompt."
    )


class LoraSpec(_Strict):
    """LoRA adapters through peft: the base weights stay frozen, the adapter is saved in final_model/."""

    r: int = Field(8, ge=1, le=4096, description="Adapter rank.")
    alpha: float = Field(16.0, gt=0, le=1e6, description="Scaling numerator (lora_alpha).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt (e.g. [q_proj, v_proj]) or all-linear."
    )


class TrainingConfig(_Strict):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto picks cuda when available.")
    batch_size: int = Field(8, ge=1, le=65536, description="Samples per micro-batch (per process).")
    max_seq_length: int = Field(
        256, ge=8, le=1_048_576, description="Longer samples are truncated (never padded to this length)."
    )
    gradient_accumulation_steps: int = Field(1, ge=1, le=65536, description="Micro-batches per optimizer step.")
    num_epochs: float = Field(1.0, gt=0, le=100_000, description="Epochs over the training split (may be fractional).")
    max_steps: int | None = Field(None, ge=1, le=10**9, description="Optimizer steps; overrides num_epochs when set.")
    learning_rate: float = Field(5e-4, gt=0, le=10.0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, le=10.0, description="AdamW weight decay.")
    warmup_steps: int = Field(0, ge=0, le=10**9, description="Linear warmup steps.")
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    max_grad_norm: float | None = Field(1.0, gt=0, le=1e6, description="Gradient clipping (null: off).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Autocast dtype (weights stay fp32)."
    )
    optimizer: Literal["adamw", "adafactor", "sgd"] = Field("adamw", description="Optimizer.")
    batching: Literal["packed", "grouped", "flatten", "random"] = Field(
        "packed",
        description="packed: each random micro-batch best-fit packed into rows of at most max_seq_length, position "
        "ids restarting per sample (no attention across samples); grouped: length-grouped dynamic padding; "
        "flatten: the whole micro-batch in one row (attention cost grows with the square of the batch); "
        "random: dynamic padding in random order.",
    )
    group_batches: int = Field(
        50,
        ge=1,
        le=1_000_000,
        description="grouped: batches per length-sorted mega-batch (smaller: more varied batches, more padding).",
    )
    save_every_steps: int | None = Field(
        None, ge=1, le=10**9, description="Checkpoint (weights + JSON sidecar) every N steps."
    )
    logging_steps: int = Field(10, ge=1, le=10**9, description="A metrics.jsonl line every N steps.")
    eval_steps: int | None = Field(
        None, ge=1, le=10**9, description="Held-out eval loss every N steps (always at the end)."
    )
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="Under torchrun: ddp replicates the model; fsdp shards it (PyTorch FSDP2 fully_shard)."
    )
    lora: LoraSpec | None = Field(None, description="Train LoRA adapters (peft) instead of every weight.")
    compile: bool = Field(False, description="torch.compile the model before training.")
    num_threads: int | None = Field(
        None, ge=1, le=1024, description="CPU threads (default: the usable cores; at most the cores this machine has)."
    )


class EvalConfig(_Strict):
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Generation budget per item.")
    batch_size: int = Field(16, ge=1, le=65536, description="Prompts generated together (left padding).")
    max_items: int | None = Field(None, ge=1, le=10**9, description="Evaluate only the first N items.")


class SFTConfig(_Strict):
    """A torch-sft run: `model`, `data`, `training`, `eval`, `seed`."""

    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds data order, the held-out split and model init.")


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "config"
    if first["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    got = first.get("input")
    shown = ""
    if not isinstance(got, (dict, list)) and got is not None:
        text = repr(got)
        shown = f" (got {text if len(text) <= 80 else text[:77] + '...'})"  # one readable line, whatever the input
    return f"key {where!r}: {first['msg']}{shown}"


def _resolve(path: Path, base: Path) -> Path:
    """Relative to the config file's folder, else to the working directory."""
    if path.is_absolute():
        return path
    for root in (base, Path.cwd()):
        if (root / path).exists():
            return (root / path).resolve()
    return (base / path).resolve()


def is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.fullmatch(text)) and not text.startswith((".", "/"))


def validate(kind: str, raw: dict[str, Any], base: Path) -> SFTConfig:
    """Schema, file existence and kind-specific rules; exit 2 with the key named."""
    try:
        config = SFTConfig.model_validate(raw)
    except ValidationError as exc:
        raise TunixError(f"config: {_describe(exc)}") from exc
    model = config.model
    if model.tiny is not None and model.model_id is not None:
        raise TunixError("config: give either 'model.model_id' or 'model.tiny', not both")
    if model.tiny is None and model.model_id is None:
        raise TunixError("config: 'model' needs 'model_id' (hub id or local folder) or 'tiny'")
    if kind == "eval" and model.tiny is not None:
        raise TunixError("config: 'model.tiny' builds an untrained model; an eval config needs 'model.model_id'")
    if model.model_id is not None:
        local = _resolve(Path(model.model_id), base)
        if local.exists():
            if not (local / "config.json").is_file() and not (local / "adapter_config.json").is_file():
                raise TunixError(f"config: 'model.model_id' folder {local} has no config.json (nor a LoRA adapter)")
            model.model_id = str(local)
        elif not is_hub_id(model.model_id):
            raise TunixError(f"config: 'model.model_id' {model.model_id!r} is neither a local folder nor a hub id")
    cores = os.cpu_count() or 1
    if config.training.num_threads is not None and config.training.num_threads > cores:
        raise TunixError(
            f"config: key 'training.num_threads': {config.training.num_threads} is more than the "
            f"{cores} cores of this machine"
        )
    data = config.data
    for key in ("train", "eval"):
        value = getattr(data, key)
        if value is not None:
            path = _resolve(value, base)
            if not path.is_file():
                raise TunixError(f"config: 'data.{key}' file {value} does not exist")
            setattr(data, key, path)
    if kind == "train" and data.train is None:
        raise TunixError("config: 'data.train' is required for training")
    if kind == "eval" and data.eval is None:
        raise TunixError("config: 'data.eval' is required for evaluation")
    return config
