"""The optimizer (fused AdamW by default, Adafactor, SGD) over trainable weights, and the warmup-then-decay schedule."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 1 - progress) if kind == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(model: Any, t: Any, total_steps: int) -> tuple[Any, Any]:
    """Weight decay on matrices only; frozen weights (LoRA's base) left out. Returns (optimizer, scheduler)."""
    import torch

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for _, p in trainable if p.dim() >= 2], "weight_decay": t.weight_decay},
              {"params": [p for _, p in trainable if p.dim() < 2], "weight_decay": 0.0}]
    if t.optimizer == "adamw":
        # fused: one kernel updates every tensor instead of a Python loop of small ops per tensor.
        optimizer: Any = torch.optim.AdamW(groups, lr=t.learning_rate, fused=True)
    elif t.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=t.learning_rate, momentum=0.9)
    else:
        from transformers.optimization import Adafactor

        optimizer = Adafactor(groups, lr=t.learning_rate, scale_parameter=False, relative_step=False, warmup_init=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(t.lr_scheduler, t.warmup_steps, total_steps))
    return optimizer, scheduler
