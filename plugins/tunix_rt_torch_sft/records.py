"""The metrics.jsonl lines this plugin writes about training (per step, then one final), through the core's contract.

The loop fills these small dataclasses; `write_metrics_line` validates each through `tunix_rt.evidence`'s models
and writes it with `allow_nan=False`: a NaN or infinity can never reach the evidence as a bare `NaN`.
(eval_summary.json is written by `evaluate.run` through `evidence.EvalSummary`.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import IO

from tunix_rt import evidence


@dataclass
class StepLine:
    """A metrics.jsonl line every `logging_steps` (and at each eval and the last step)."""

    step: int
    epoch: float
    loss: float  # mean per target token since the previous line
    learning_rate: float
    grad_norm: float
    tokens_seen: int  # real tokens, all ranks
    elapsed_s: float
    eval_loss: float | None = None
    eval_s: float | None = None


@dataclass
class FinalLine:
    """The last metrics.jsonl line (`final: true`): the whole run's rates, losses and MFU."""

    step: int
    epoch: float
    train_runtime: float
    train_samples_per_second: float
    train_steps_per_second: float
    train_tokens_per_second: float
    tokens_seen: int
    padding_fraction: float
    mfu: float
    peak_flops: float
    peak_method: str
    flops_per_token: float
    train_loss: float
    first_loss: float
    final_loss: float
    eval_loss: float | None
    batching: str
    dtype: str
    world_size: int
    strategy: str
    final: bool = True


def write_metrics_line(stream: IO[str], line: StepLine | FinalLine) -> None:
    """One JSON line, validated through the core's contract (`evidence.StepMetrics` / `FinalMetrics`, which `close`
    reads back) and flushed so a crash keeps every line written so far.

    A step line carries eval_loss/eval_s only when it evaluated; the final line always has eval_loss (null when
    nothing was held out)."""
    final = isinstance(line, FinalLine)
    model = evidence.FinalMetrics(**asdict(line)) if final else evidence.StepMetrics(**asdict(line))
    fields = {k: v for k, v in model.model_dump(mode="json").items() if v is not None or (final and k == "eval_loss")}
    stream.write(json.dumps(fields, allow_nan=False) + "\n")
    stream.flush()
