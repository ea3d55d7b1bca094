"""Scoring answers against an eval set (exact, normalised, contains), and the built-in `score` plugin that scores a
predictions file nobody scored into an evidence folder, with the same metrics as a plugin's evaluation.

Pure Python: the torch-sft plugin scores its generations with these same functions, so a model
evaluated by the plugin and a predictions file scored later are measured alike.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunix_rt import evidence
from tunix_rt.errors import TunixError
from tunix_rt.plugins import Kind, Prepared, RunContext, RunResult

PRIMARY_METRIC = "normalised"
METRICS = ("exact", "normalised", "contains")
MAX_FILE_BYTES = 512 * 1024 * 1024  # an eval set or predictions file larger than this is refused, not read

_ANSWER_LINE = re.compile(r"^\s*(?:final\s+)?answer\s*[:：]\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_ANSWER_IS = re.compile(r".*\bthe (?:final )?answer is\s*[:：]?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TOKEN = re.compile(r"-?\d+(?:\.\d+)?|[^\W_]+")


def extract_answer(generated: str) -> str:
    """The last `Answer: ...` line; else 'the answer is ...'; else the last non-empty line."""
    found = _ANSWER_LINE.findall(generated)
    if found and found[-1]:
        return str(found[-1])
    found = _ANSWER_IS.findall(generated)
    if found:
        return str(found[-1])
    lines = [line.strip() for line in generated.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _number(token: str) -> str:
    try:
        value = Decimal(token)
    except InvalidOperation:
        return token
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def normalise(text: str) -> str:
    """Case, whitespace, punctuation and number formats folded: '$1,000.0' and '1000' compare equal."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _THOUSANDS.sub("", text)
    tokens = [_number(t) if t[0].isdigit() or t[0] == "-" else t for t in _TOKEN.findall(text)]
    return " ".join(tokens)


def score(expected: str, extracted: str, generated: str) -> dict[str, bool]:
    norm_expected = normalise(expected)
    return {
        "exact": extracted.strip() == expected.strip(),
        "normalised": bool(norm_expected) and normalise(extracted) == norm_expected,
        # Whole-token containment: '42' is not contained in '142'.
        "contains": bool(norm_expected) and f" {norm_expected} " in f" {normalise(generated)} ",
    }


@dataclass(frozen=True)
class Item:
    """One eval item: what was asked, what is right, and the groups it is reported under."""

    id: str
    prompt: str
    expected: str
    section: str = "unspecified"
    category: str = "unspecified"
    difficulty: str = "unspecified"


class Grouped(Protocol):
    """What a breakdown needs of an item: the groups it is reported under (core `Item`, or a plugin's own)."""

    @property
    def section(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def difficulty(self) -> str: ...


def totals(scored: list[dict[str, bool]], indices: list[int]) -> evidence.ScoreTotals:
    n = len(indices)
    values: dict[str, Any] = {"n": n}
    for key in METRICS:
        hits = sum(scored[i][key] for i in indices)
        values[key] = hits
        values[f"{key}_rate"] = round(hits / n, 4) if n else 0.0
    return evidence.ScoreTotals(**values)


def summarise(items: Sequence[Grouped], scored: list[dict[str, bool]]) -> dict[str, Any]:
    """Totals and per-section/category/difficulty breakdowns (counts and rates), as `EvalSummary` fields."""
    summary: dict[str, Any] = {"totals": totals(scored, list(range(len(items))))}
    for name in ("section", "category", "difficulty"):
        groups: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            groups[getattr(item, name)].append(i)
        summary[f"by_{name}"] = {group: totals(scored, idx) for group, idx in sorted(groups.items())}
    return summary


# --- reading the two files --------------------------------------------------------------------------


def _lines(path: Path, what: str) -> tuple[list[tuple[int, Any]], str]:
    """(line number, parsed JSON) of a JSONL file, and its sha256; bounded, UTF-8 (a BOM is allowed)."""
    try:
        if not path.is_file():
            raise TunixError(f"{what} {path} does not exist (or is not a regular file)")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TunixError(f"{what} {path} is over {MAX_FILE_BYTES // 1024 // 1024} MB")
        raw = path.read_bytes()
    except OSError as exc:
        raise TunixError(f"{what} {path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TunixError(f"{what} {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except ValueError:
            raise TunixError(f"{what} {path}:{number}: not a JSON line") from None
    if not rows:
        raise TunixError(f"{what} {path} holds no records")
    return rows, hashlib.sha256(raw).hexdigest()


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value).strip()


def load_items(path: Path) -> tuple[list[Item], str]:
    """An eval set: `id`, `prompt`, `expected_answer` (or `expected`/`final_answer`), optional groups."""
    items = []
    rows, digest = _lines(path, "eval set")
    for number, obj in rows:
        if not isinstance(obj, dict):
            raise TunixError(f"eval set {path}:{number}: not a JSON object")
        prompt = _text(obj.get("prompt"))
        expected = _text(obj.get("expected_answer", obj.get("expected", obj.get("final_answer"))))
        if not prompt or expected is None:
            raise TunixError(f"eval set {path}:{number}: needs 'prompt' and 'expected_answer'")
        raw_meta = obj.get("meta")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        items.append(Item(
            id=_text(obj.get("id")) or f"line-{number}",
            prompt=prompt,
            expected=expected,
            section=_text(obj.get("section")) or "unspecified",
            category=_text(obj.get("category", meta.get("category"))) or "unspecified",
            difficulty=_text(obj.get("difficulty")) or "unspecified",
        ))
    return items, digest


@dataclass(frozen=True)
class Prediction:
    line: int
    id: str | None
    prompt: str | None
    generated: str


_OUTPUT_KEYS = ("generated", "final_answer", "prediction", "output", "completion", "response")


def load_predictions(path: Path) -> tuple[list[Prediction], str, str | None]:
    """A predictions file in any of the shapes seen: ours (`generated`), the trace shape (`final_answer`,
    `meta.eval_id`), or a plain `prediction`/`output`. Returns the predictions, the sha256, and the model
    the file names (`meta.model`), if any."""
    found = []
    model = None
    rows, digest = _lines(path, "predictions")
    for number, obj in rows:
        if not isinstance(obj, dict):
            raise TunixError(f"predictions {path}:{number}: not a JSON object")
        raw_meta = obj.get("meta")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        generated = next((t for t in (_text(obj.get(k)) for k in _OUTPUT_KEYS) if t is not None), None)
        if generated is None:
            raise TunixError(f"predictions {path}:{number}: no output field (one of {', '.join(_OUTPUT_KEYS)})")
        model = model or _text(meta.get("model"))
        found.append(Prediction(number, _text(obj.get("id", meta.get("eval_id"))), _text(obj.get("prompt")), generated))
    return found, digest, model


@dataclass(frozen=True)
class Matched:
    pairs: list[tuple[Item, Prediction]]
    unmatched: list[str]  # predictions that name no item of the eval set


def match(items: list[Item], predictions: list[Prediction]) -> Matched:
    """Pairs each prediction with its item by id, else by the exact prompt; the first prediction of an item wins."""
    by_id = {item.id: item for item in items}
    by_prompt = {item.prompt: item for item in items}
    pairs: list[tuple[Item, Prediction]] = []
    taken: set[str] = set()
    unmatched: list[str] = []
    for pred in predictions:
        item = by_id.get(pred.id or "") or by_prompt.get(pred.prompt or "")
        if item is None:
            unmatched.append(f"line {pred.line}: no eval item with id {pred.id!r} or this prompt")
        elif item.id in taken:
            unmatched.append(f"line {pred.line}: a second prediction for {item.id}")
        else:
            taken.add(item.id)
            pairs.append((item, pred))
    return Matched(pairs, unmatched)


# --- the built-in plugin ---------------------------------------------------------------------------


class ScoreConfig(BaseModel):
    """`milestone eval score`: which predictions against which eval set."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    predictions: Path = Field(description="JSONL predictions to score.")
    eval_set: Path = Field(description="JSONL eval set with the expected answers.")
    model: str | None = Field(None, description="The model that made the predictions (default: the file's meta.model).")


@dataclass
class _State:
    items: list[Item]
    items_sha: str
    predictions: list[Prediction]
    predictions_sha: str
    matched: Matched


def _stored(ctx: RunContext, path: Path) -> str:
    """Relative to the repository when inside it, else absolute: how every path is stored."""
    try:
        return path.resolve().relative_to(ctx.project_root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


class ScorePlugin:
    """Scores a predictions file that was never scored (exact, normalised, contains), like a plugin evaluation."""

    name = "score"
    version = "1"
    capabilities = ("eval",)

    def config_schema(self) -> dict[str, Any]:
        return ScoreConfig.model_json_schema()

    def validate_config(self, kind: Kind, raw: dict[str, Any], base: Path) -> ScoreConfig:
        try:
            config = ScoreConfig.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise TunixError(f"score config: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
        config.predictions = (base / config.predictions).resolve()
        config.eval_set = (base / config.eval_set).resolve()
        return config

    def prepare(self, kind: Kind, config: ScoreConfig) -> Prepared:
        items, items_sha = load_items(config.eval_set)
        predictions, predictions_sha, named_model = load_predictions(config.predictions)
        matched = match(items, predictions)
        if not matched.pairs:
            raise TunixError(f"no prediction in {config.predictions} matches an item of {config.eval_set} "
                             "(by id or by prompt)")
        model = config.model or named_model or f"predictions:{config.predictions.name}"
        facts = {
            "datasets": [
                {"path": str(config.eval_set), "sha256": items_sha, "role": "eval", "records": len(items)},
                {"path": str(config.predictions), "sha256": predictions_sha, "role": "eval",
                 "records": len(predictions)},
            ],
            "model": {"source": "external", "id": model},
            "seed": 0,
            "device": "cpu",
            "dtype": "text",
        }
        return Prepared(facts=facts, state=_State(items, items_sha, predictions, predictions_sha, matched))

    def train(self, ctx: RunContext, config: ScoreConfig, prepared: Prepared) -> RunResult:
        raise TunixError("the score plugin only evaluates")

    def evaluate(self, ctx: RunContext, config: ScoreConfig, prepared: Prepared) -> RunResult:
        state: _State = prepared.state
        records, scored, items = [], [], []
        for item, pred in state.matched.pairs:
            answer = extract_answer(pred.generated)
            result = score(item.expected, answer, pred.generated)
            items.append(item)
            scored.append(result)
            records.append({"id": item.id, "prompt": item.prompt, "expected": item.expected,
                            "generated": pred.generated, "extracted": answer, "scores": result,
                            "section": item.section, "category": item.category, "difficulty": item.difficulty})
        evidence.write_text(ctx.run_dir / evidence.PREDICTIONS,
                            "\n".join(json.dumps(r, ensure_ascii=False) for r in records))
        parts = summarise(items, scored)
        hits = parts["totals"].normalised or 0
        summary = evidence.EvalSummary(
            run_id=ctx.run_id,
            eval_set=evidence.EvalSetRef(path=_stored(ctx, config.eval_set), sha256=state.items_sha,
                                         n_items=len(state.items)),
            n_items=len(state.items),
            n_scored=len(scored),
            primary_metric=PRIMARY_METRIC,
            primary_score=round(hits / len(scored), 4),
            predictions_path=evidence.PREDICTIONS,
            source_predictions={"path": _stored(ctx, config.predictions), "sha256": state.predictions_sha},
            unmatched_predictions=state.matched.unmatched,
            **parts,
        )
        evidence.write_eval_summary(ctx.run_dir / evidence.EVAL_SUMMARY, summary)
        t = summary.totals
        line = (f"Scored {len(scored)} of {len(state.items)} items: {summary.primary_label()}; exact {t.exact}/{t.n}, "
                f"contains {t.contains}/{t.n}")
        if state.matched.unmatched:
            line += f"; {len(state.matched.unmatched)} prediction(s) matched no item"
        ctx.log(line)
        return RunResult(metrics={"eval_accuracy": summary.primary_score, "eval_exact": t.exact,
                                  "eval_normalised": t.normalised, "eval_contains": t.contains, "n_eval": t.n},
                         results=[line])
