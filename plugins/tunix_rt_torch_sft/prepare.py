"""Before any folder exists: load and check the data, build or load the tokenizer, and prove some record keeps a target.

Heavy imports are allowed here (tokenizers, transformers for the tokenizer) but no model is loaded
and nothing is written, so a bad dataset is refused with exit 2 and no half-made evidence folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunix_rt.errors import TunixError
from tunix_rt.plugins import Prepared

from tunix_rt_torch_sft import data as D


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

    from tunix_rt_torch_sft.train import resolve_device

    state: dict[str, Any] = {"invalid": []}
    datasets = []
    if kind == "train":
        loaded = D.load_traces(config.data.train, config.data.skip_invalid)
        datasets.append(_dataset_fact("train", loaded))
        train, heldout = D.split_heldout(loaded.records, config.data.eval_split, config.seed)
        texts = [D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer) for t in train]
        tokenizer = _tokenizer(config, texts)
        encoded = D.encode(train, tokenizer, config.training.max_seq_length, config.data.completion_only_loss)
        if not encoded.samples:
            raise TunixError(
                f"{config.data.train}: no record keeps a reasoning step or answer token within "
                f"max_seq_length {config.training.max_seq_length}: nothing to train on"
            )
        state.update(train=train, heldout=heldout, tokenizer=tokenizer, invalid=loaded.invalid,
                     max_positions=max(512, config.training.max_seq_length + config.eval.max_new_tokens + 128))
    if config.data.eval is not None:
        loaded_eval = D.load_eval(config.data.eval, config.data.skip_invalid)
        datasets.append(_dataset_fact("eval", loaded_eval))
        state["eval"] = loaded_eval
    else:
        state["eval"] = None
    facts = {
        "datasets": datasets,
        "model": _model_fact(config),
        "seed": config.seed,
        "device": resolve_device(config.training.device),
        "dtype": config.training.dtype,
    }
    state["model_ref"] = facts["model"]
    return Prepared(facts=facts, state=state)
