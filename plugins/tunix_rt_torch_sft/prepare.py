"""Before any folder exists: load and check the data, build or load the tokenizer, and prove some record keeps a target.

Heavy imports are allowed here (tokenizers, transformers for the tokenizer) but no model is loaded
and nothing is written, so a bad dataset is refused with exit 2 and no half-made evidence folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt.errors import TunixError
from tunix_rt.plugins import Prepared
from tunix_rt_torch_sft import data as D


@dataclass
class RunState:
    """What `prepare` hands `train`/`evaluate` (as `Prepared.state`): the split data, the tokenizer, the eval set."""

    model_ref: dict[str, Any]  # the manifest's model fact (tiny / local / hub)
    train: list[D.Trace] = field(default_factory=list)
    heldout: list[D.Trace] = field(default_factory=list)
    tokenizer: Any = None  # built (tiny) or loaded; None for an eval run, which loads it with the model
    invalid: list[str] = field(default_factory=list)  # skipped training lines (data.skip_invalid)
    max_positions: int = 512  # position table of a tiny model: room for the longest sample plus generation
    eval: D.Loaded | None = None


def _dataset_fact(role: str, loaded: D.Loaded) -> dict[str, Any]:
    return {"role": role, "path": str(loaded.path), "sha256": loaded.sha256, "records": len(loaded.records)}


def _model_fact(config) -> dict[str, Any]:
    model = config.model
    if model.tiny is not None:
        spec = model.tiny
        return {"source": "tiny", "arch": spec.arch,
                "id": f"tiny-{spec.arch}-l{spec.n_layer}-d{spec.n_embd}-h{spec.n_head}-v{spec.vocab_size}"}
    if Path(model.model_id).exists():
        return {"source": "local", "local_path": model.model_id}
    return {"source": "hub", "id": model.model_id, "revision": model.revision or "main"}


def _tokenizer(config, texts: list[str]):
    if config.model.tiny is not None:
        from tunix_rt_torch_sft import tiny

        return tiny.train_tokenizer(texts, config.model.tiny.vocab_size)
    from transformers import AutoTokenizer

    from tunix_rt_torch_sft import hub

    local = Path(config.model.model_id).exists()
    return AutoTokenizer.from_pretrained(config.model.model_id, revision=None if local else config.model.revision,
                                         token=hub.token())


def prepare(kind: str, config) -> Prepared:
    import torch  # noqa: F401 - resolves the device below; imported here so a broken install fails before any write

    from tunix_rt_torch_sft.runtime import resolve_device

    datasets = []
    state = RunState(model_ref=_model_fact(config))
    if kind == "train":
        loaded = D.load_traces(config.data.train, config.data.skip_invalid)
        datasets.append(_dataset_fact("train", loaded))
        state.train, state.heldout = D.split_heldout(loaded.records, config.data.eval_split, config.seed)
        texts = [D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer) for t in state.train]
        state.tokenizer = _tokenizer(config, texts)
        encoded = D.encode(state.train, state.tokenizer, config.training.max_seq_length,
                           config.data.completion_only_loss)
        if not encoded.samples:
            raise TunixError(
                f"{config.data.train}: no record keeps a reasoning step or answer token within "
                f"max_seq_length {config.training.max_seq_length}: nothing to train on"
            )
        state.invalid = loaded.invalid
        state.max_positions = max(512, config.training.max_seq_length + config.eval.max_new_tokens + 128)
    if config.data.eval is not None:
        state.eval = D.load_eval(config.data.eval, config.data.skip_invalid)
        datasets.append(_dataset_fact("eval", state.eval))
    facts = {
        "datasets": datasets,
        "model": state.model_ref,
        "seed": config.seed,
        "device": resolve_device(config.training.device),
        "dtype": config.training.dtype,
    }
    return Prepared(facts=facts, state=state)
