"""What a run counts while it trains (tokens, loss, time) and what that is worth: tokens/s and MFU against a
measured peak.

MFU is model FLOPs on real (non-pad) tokens per second divided by this machine's matmul peak. The peak is
the best of several timed matmul trials at the start and again at the end (load on a shared machine only
lowers a trial, so the best one is the closest to the hardware); if the run itself went faster than that
peak, the run's rate is the peak, so MFU above 100% cannot be reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

PEAK_TRIALS = 5


@dataclass
class Peak:
    """The MFU denominator and how it was measured."""

    flops: float
    method: str
    trials: list[float] = field(default_factory=list)


def matmul_trials(device: str, dtype: str, trials: int = PEAK_TRIALS, seconds: float = 0.1) -> list[float]:
    """FLOP/s of square matmuls at `dtype`, one figure per timed trial."""
    import torch

    n = 1024 if device == "cpu" else 8192
    tdtype = torch.float32 if dtype == "float32" else getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(tdtype)
    b = torch.randn(n, n, device=device).to(tdtype)
    for _ in range(2):
        a @ b
    out = []
    for _ in range(trials):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            count += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out.append(2 * n**3 * count / (time.perf_counter() - t0))
    return out


def flops_per_token(model: Any, mean_context: float) -> float:
    """6 x matmul parameters (the LM head counted even when tied) + 12 x layers x width x context (PaLM appendix B)."""
    cfg = model.config
    embeddings = {id(p) for m in model.modules() if m.__class__.__name__.endswith("Embedding") for p in m.parameters()}
    matmul = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in embeddings)
    width = getattr(cfg, "hidden_size", None) or cfg.n_embd
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    matmul += cfg.vocab_size * width  # the output projection
    return 6 * matmul + 12 * layers * width * mean_context


@dataclass
class Meter:
    """Running totals of one process; `window_loss` is the mean loss since the last metrics line."""

    tokens: int = 0  # real tokens (pads excluded)
    slots: int = 0  # token positions computed, pads included
    samples: int = 0
    seconds: float = 0.0
    loss_sum: float = 0.0
    targets: int = 0
    first_loss: float | None = None
    last_loss: float = 0.0
    _window_loss: float = 0.0
    _window_targets: int = 0

    def add(self, loss_sum: float, targets: int, tokens: int, slots: int, samples: int, seconds: float) -> None:
        """One optimizer step (loss and targets already summed over ranks; tokens and samples this rank's)."""
        self.tokens += tokens
        self.slots += slots
        self.samples += samples
        self.seconds += seconds
        self.loss_sum += loss_sum
        self.targets += targets
        self._window_loss += loss_sum
        self._window_targets += targets
        self.last_loss = loss_sum / max(1, targets)
        if self.first_loss is None:
            self.first_loss = self.last_loss

    def window_loss(self) -> float:
        value = self._window_loss / max(1, self._window_targets)
        self._window_loss, self._window_targets = 0.0, 0
        return value

    def tokens_per_s(self, world_size: int) -> float:
        return self.tokens * world_size / self.seconds if self.seconds else 0.0

    def padding_fraction(self) -> float:
        return 1 - self.tokens / max(1, self.slots)

    def mfu(self, fpt: float, peak: Peak, world_size: int) -> float:
        achieved = fpt * self.tokens_per_s(world_size) / world_size
        return achieved / max(peak.flops, achieved) if achieved else 0.0


def measure_peak(device: str, dtype: str, before: list[float]) -> Peak:
    """The best of the trials taken at the start (`before`) and of as many taken now, at the end."""
    after = matmul_trials(device, dtype)
    trials = [*before, *after]
    method = (
        f"best of {len(trials)} timed {'1024' if device == 'cpu' else '8192'}^3 {dtype} matmul trials "
        f"({len(before)} at start, {len(after)} at end); MFU capped at 1 by taking the run's own rate when higher"
    )
    return Peak(flops=max(trials), method=method, trials=[round(t) for t in trials])
