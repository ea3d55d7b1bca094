"""Models in and out: load a causal LM and its tokenizer, add LoRA adapters, wrap for DDP/FSDP, save_pretrained.

Loading and saving both go through transformers' `from_pretrained`/`save_pretrained` (and peft's for
adapters), so a model written by a run loads back with the same calls a user would type. The two places where
transformers 4.x (>= 4.50) and 5.x differ for this module are the compat section at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunix_rt.errors import MissingDependency, TunixError


def quiet_transformers() -> None:
    """The run's own log says what happens; transformers' progress bars and hints would only add noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_model(model_dir: str, revision: str | None, attn_implementation: str, device: str) -> tuple[Any, Any]:
    """The model in fp32 (autocast lowers the matmuls) and its tokenizer, with a pad token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt_torch_sft import hub

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, revision=revision, token=hub.token())
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if attn_implementation == "flash_attention_2" and not torch.cuda.is_available():
        raise TunixError("config: 'model.attn_implementation' flash_attention_2 needs a CUDA device")
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, revision=revision, token=hub.token(), attn_implementation=attn_implementation,
        **dtype_kwarg(torch.float32),
    )
    # Needed for exact padding-free batches with sdpa, and saves memory while training.
    model.config.use_cache = False
    return model.to(device), tokenizer  # type: ignore[arg-type]  # transformers' stubs: .to takes a device


def add_lora(model: Any, spec: Any) -> Any:
    """peft LoRA adapters on `spec.target_modules`; only the adapters train."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingDependency("peft") from exc
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=spec.target_modules,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def hf_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper (LoRA layers are injected in place, so they stay in use)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def parallelize(module: Any, runtime: Any, strategy: str) -> Any:
    """DDP, or FSDP2 `fully_shard` per transformer block and then the whole; unchanged in a single process."""
    if not runtime.distributed:
        return module
    import torch

    if strategy == "ddp":
        ids = [runtime.local_rank] if runtime.device == "cuda" else None
        # LoRA freezes most weights: DDP must not wait for gradients that never come.
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch 2.4-2.5 ship FSDP2 under its pre-release name
        from torch.distributed._composable.fsdp import fully_shard  # type: ignore[no-redef]

    for block in decoder_blocks(module):
        fully_shard(block)
    fully_shard(module)
    return module


def decoder_blocks(module: Any) -> list[Any]:
    """The repeated transformer blocks (GPT2Block, LlamaDecoderLayer, ...): FSDP's natural shard units."""
    import torch

    lists: list[Any] = [m for m in module.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    sizes = [len(blocks) for blocks in lists]
    return list(lists[sizes.index(max(sizes))]) if lists else []


def save_pretrained(model: Any, tokenizer: Any, folder: Path, state_dict: dict[str, Any] | None = None) -> None:
    """save_pretrained (the adapter alone for a peft model; `state_dict` when gathered from FSDP shards), then text
    files given one final newline."""
    folder.mkdir(parents=True, exist_ok=True)
    inner = hf_model(model)
    inner.config.use_cache = True
    model.save_pretrained(folder, **({"state_dict": state_dict} if state_dict is not None else {}))
    inner.config.use_cache = False
    tokenizer.save_pretrained(folder)
    for path in folder.iterdir():
        if path.suffix in (".json", ".txt", ".jinja") and path.is_file():
            raw = path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                path.write_bytes(raw.replace(b"\r\n", b"\n") + b"\n")


# --- transformers 4.x / 5.x -----------------------------------------------------------------------------------
# Where the two majors differ for this plugin (tested: 4.57 by `make test-tf4`, 5.x by `make test`):
# - from_pretrained's dtype argument is `dtype` from 4.56 on and `torch_dtype` before (deprecated since, a warning on
#   5.x), and the default differs (4.x float32, 5.x "auto"), so the dtype is always passed, under the right name;
# - the tied weights of a model: 5.x lists the ties in effect as `all_tied_weights_keys` ({alias: source}); 4.x
#   only has the class attribute `_tied_weights_keys` (aliases that can be tied), in effect when the config ties
#   the word embeddings.


# - packed and flattened rows restart position ids per sample; from 4.54 on, sdpa turns that into a mask
#   that keeps the samples apart, while 4.50-4.53 let them attend to each other (silently wrong training), so
#   those batchings are refused there (`check_batching`).
ROWS_KEPT_APART_FROM = "4.54"


def safe_batching(batching: str, chosen: bool, version: str) -> str:
    """The batching to train with on this transformers version: a packed or flattened row that the version would
    train wrongly is refused when the config asks for it (before any folder exists), and replaced by `grouped`
    when it is only the default (the resolved config.yaml of the run then says grouped)."""
    from packaging.version import Version

    from tunix_rt.errors import TunixError

    if batching not in ("packed", "flatten") or Version(version) >= Version(ROWS_KEPT_APART_FROM):
        return batching
    if not chosen:
        return "grouped"
    raise TunixError(f"training.batching: {batching} needs transformers>={ROWS_KEPT_APART_FROM} (this is "
                         f"{version}: it lets the samples of one row attend to each other); set training.batching: "
                         "grouped or random, or upgrade transformers")


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """The from_pretrained keyword that sets the dtype on this transformers version."""
    import transformers
    from packaging.version import Version

    return {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": dtype}


def tied_aliases(model: Any) -> list[str]:
    """State-dict keys that alias another weight (lm_head.weight tied to the embeddings): saved once, as
    from_pretrained expects, when a state dict is gathered by hand (FSDP)."""
    inner = hf_model(model)
    ties = getattr(inner, "all_tied_weights_keys", None)
    if ties is not None:
        return list(ties)
    config = inner.config.get_text_config() if hasattr(inner.config, "get_text_config") else inner.config
    if not getattr(config, "tie_word_embeddings", False):
        return []
    return list(getattr(inner, "_tied_weights_keys", None) or [])
