"""Acceptance thresholds: parse `eval.primary_score>=0.4`, check its key against the evidence contract, judge it.

A threshold names a key of the evidence contract (`tunix_rt/evidence.py`): `train.<key>` is a field of
the final `metrics.jsonl` line, `eval.<path>` a path into `eval_summary.json` (`eval.primary_score`,
`eval.totals.exact_rate`, `eval.by_section.core.normalised_rate`). A key the contract does not define
is refused when the threshold is registered, not discovered missing at close.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from tunix_rt.errors import TunixError
from tunix_rt.evidence import EvalSummary, FinalMetrics, ScoreTotals
from tunix_rt.models import Threshold

_EXPRESSION = re.compile(r"^\s*(?P<key>[A-Za-z_][\w.\-]*)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>[^\s]+)\s*$")
_NUMERIC = (int, float)
_COMPARE = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def _numeric_fields(model: type[BaseModel]) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        if any(t in _NUMERIC for t in (get_args(info.annotation) or (info.annotation,))):
            names.append(name)
    return names


def train_keys() -> list[str]:
    return [f"train.{name}" for name in _numeric_fields(FinalMetrics)]


def _eval_path_ok(parts: list[str]) -> bool:
    """Walks `eval_summary.json`'s model: scalar fields, `totals.<field>`, `by_<group>.<name>.<field>`."""
    model: type[BaseModel] = EvalSummary
    i = 0
    while i < len(parts):
        info = model.model_fields.get(parts[i])
        if info is None:
            return False
        annotation = info.annotation
        if annotation is ScoreTotals:
            model, i = ScoreTotals, i + 1
            continue
        if get_origin(annotation) is dict:  # by_section.<any name>.<field>
            if i + 2 >= len(parts):
                return False
            model, i = ScoreTotals, i + 2
            continue
        return i == len(parts) - 1 and parts[i] in _numeric_fields(model)
    return False


def parse(expression: str) -> Threshold:
    """`eval.primary_score>=0.4` -> Threshold; a bad form, unknown key or non-finite value is exit 2."""
    match = _EXPRESSION.match(expression or "")
    if not match:
        raise TunixError(
            f"threshold {expression!r}: expected KEY OP NUMBER with OP one of >= <= > < == "
            "(e.g. eval.primary_score>=0.4)"
        )
    key, op, raw = match.group("key"), match.group("op"), match.group("value")
    try:
        value = float(raw)
    except ValueError:
        raise TunixError(f"threshold {expression!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise TunixError(f"threshold {expression!r}: the value must be a finite number")
    kind, _, path = key.partition(".")
    if kind == "train" and key in train_keys():
        return Threshold(key=key, op=op, value=value)  # type: ignore[arg-type]
    if kind == "eval" and path and _eval_path_ok(path.split(".")):
        return Threshold(key=key, op=op, value=value)  # type: ignore[arg-type]
    known = ", ".join(train_keys() + ["eval.primary_score", "eval.totals.<metric>", "eval.by_<group>.<name>.<metric>"])
    raise TunixError(f"threshold {expression!r}: unknown key {key!r} (known: {known})")


def _lookup(data: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(data, BaseModel):
            data = getattr(data, part, None) if part in type(data).model_fields else (data.model_extra or {}).get(part)
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


@dataclass(frozen=True)
class Judged:
    """One threshold against the milestone's headline runs."""

    threshold: Threshold
    measured: float | None
    run: str | None  # the run the value was read from
    met: bool

    @property
    def measured_text(self) -> str:
        return "no value" if self.measured is None else f"{self.measured:g}"

    def line(self) -> str:
        where = f" ({self.run})" if self.run else ""
        if self.measured is None:
            return f"{self.threshold.expression}: no value measured{where}"
        return f"{self.threshold.expression}: measured {self.measured:g}{where}"


def judge(
    threshold: Threshold,
    final: FinalMetrics | None,
    train_run: str | None,
    summary: EvalSummary | None,
    eval_run: str | None,
) -> Judged:
    kind, _, path = threshold.key.partition(".")
    source, run = (final, train_run) if kind == "train" else (summary, eval_run)
    value = _lookup(source, path.split(".")) if source is not None else None
    if isinstance(value, bool) or not isinstance(value, _NUMERIC) or not math.isfinite(value):
        return Judged(threshold, None, run if source is not None else None, False)
    return Judged(threshold, float(value), run, _COMPARE[threshold.op](float(value), threshold.value))
