"""The training objective: summed next-token cross-entropy over target tokens, with the output layer run on them only.

A causal LM's output layer turns every position into vocabulary logits, but only positions whose next token
is a target (the completion, under completion-only loss) enter the loss. `TargetLoss` runs the decoder,
keeps the hidden states of those positions and projects only them, which saves the output layer's share of
the FLOPs on prompt and pad positions. It is an `nn.Module`, so DDP and FSDP wrap it like any model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tunix_rt_torch_sft import data as D
from tunix_rt_torch_sft.modeling import hf_model


class TargetLoss(torch.nn.Module):
    """forward(batch) -> (summed loss over target tokens, number of target tokens)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model  # the transformers (or peft) model; its parameters are this module's

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        inner = hf_model(self.model)
        hidden = inner.base_model(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                                  use_cache=False).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != D.IGNORE
        logits = inner.get_output_embeddings()(hidden[:, :-1][keep]).float()
        cap = getattr(inner.config, "final_logit_softcapping", None)
        if cap:  # gemma-2 style capping, which the model's own forward would apply
            logits = torch.tanh(logits / cap) * cap
        loss = F.cross_entropy(logits, targets[keep], reduction="sum")
        return loss, keep.sum()


def batch_loss(
    module: torch.nn.Module, batch: dict[str, torch.Tensor], dev: str, autocast: Any
) -> tuple[torch.Tensor, int]:
    """One micro-batch through `module` (a TargetLoss, possibly DDP/FSDP-wrapped) under autocast."""
    inputs = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
    with autocast():
        loss, count = module(**inputs)
    return loss, int(count)


def heldout_loss(
    module: torch.nn.Module, samples: list[D.Sample], dev: str, autocast: Any, batch_size: int, pad_id: int
) -> float | None:
    """Mean cross-entropy per target token on the held-out split (padded, length-grouped batches)."""
    if not samples:
        return None
    module.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for idx in D.plan_batches([len(s.input_ids) for s in samples], batch_size, "grouped", 0):
            loss, n = batch_loss(module, D.collate([samples[i] for i in idx], "grouped", pad_id), dev, autocast)
            total += float(loss)
            count += n
    module.train()
    return total / count if count else None
