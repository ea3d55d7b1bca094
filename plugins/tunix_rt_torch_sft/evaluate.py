"""Scored evaluation: batched greedy generation (left padding, EOS stop), answer extraction, exact/normalised/contains scoring.

The hand-run project generated one item at a time with a hard-coded 50-token budget and never
scored anything; here every item gets a generated trace, an extracted answer and three scores,
with totals and breakdowns by section, category and difficulty.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tunix_rt_torch_sft.data import EvalItem, format_prompt

_ANSWER_LINE = re.compile(r"^\s*(?:final\s+)?answer\s*[:：]\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_ANSWER_IS = re.compile(r".*\bthe (?:final )?answer is\s*[:：]?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TOKEN = re.compile(r"-?\d+(?:\.\d+)?|[^\W_]+")


def extract_answer(generated: str) -> str:
    """The last `Answer: ...` line; else 'the answer is ...'; else the last non-empty line."""
    found = _ANSWER_LINE.findall(generated)
    if found and found[-1]:
        return found[-1]
    found = _ANSWER_IS.findall(generated)
    if found:
        return found[-1]
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


def summarise(items: list[EvalItem], scored: list[dict[str, bool]]) -> dict[str, Any]:
    """Totals and per-section/category/difficulty breakdowns (counts and rates)."""

    def block(indices: list[int]) -> dict[str, Any]:
        n = len(indices)
        out: dict[str, Any] = {"n": n}
        for key in ("exact", "normalised", "contains"):
            hits = sum(scored[i][key] for i in indices)
            out[key] = hits
            out[f"{key}_rate"] = round(hits / n, 4) if n else 0.0
        return out

    summary = {"totals": block(list(range(len(items))))}
    for field in ("section", "category", "difficulty"):
        groups: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            groups[getattr(item, field)].append(i)
        summary[f"by_{field}"] = {name: block(idx) for name, idx in sorted(groups.items())}
    return summary


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int, device, autocast) -> tuple[list[str], int]:
    """Greedy completions in the input order; batches of similar length, left-padded, stopping at EOS."""
    import torch

    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    new_tokens = 0
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=True)
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.no_grad(), autocast():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=pad, use_cache=True
            )
        generated = out[:, enc["input_ids"].shape[1] :].tolist()
        for i, ids in zip(chunk, generated):
            if eos in ids:
                ids = ids[: ids.index(eos)]
            new_tokens += len(ids)
            outputs[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return outputs, new_tokens


def run(model, tokenizer, items: list[EvalItem], cfg, device, autocast, run_dir: Path, meta: dict[str, Any], log) -> dict[str, Any]:
    """Generates, extracts, scores; writes predictions.jsonl and eval_summary.json; returns the summary."""
    from tunix_rt.evidence import write_text
    from tunix_rt_torch_sft.records import write_eval_summary

    if cfg.max_items is not None:
        items = items[: cfg.max_items]
    log(f"eval: {len(items)} items, max_new_tokens {cfg.max_new_tokens}, batch {cfg.batch_size}")
    t0 = time.monotonic()
    generated, new_tokens = generate(
        model, tokenizer, [format_prompt(it.prompt) for it in items], cfg.max_new_tokens, cfg.batch_size, device, autocast
    )
    runtime = time.monotonic() - t0
    records, scored = [], []
    for item, text in zip(items, generated):
        answer = extract_answer(text)
        scores = score(item.expected, answer, text)
        scored.append(scores)
        records.append({
            "id": item.id, "prompt": item.prompt, "expected": item.expected, "generated": text,
            "extracted": answer, "scores": scores,
            "section": item.section, "category": item.category, "difficulty": item.difficulty,
        })
    write_text(run_dir / "predictions.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    summary = {
        **meta,
        "n_items": len(items),
        "n_scored": len(scored),
        "primary_metric": "normalised",
        "primary_score": round(sum(s["normalised"] for s in scored) / len(scored), 4) if scored else 0.0,
        **summarise(items, scored),
        "generation": {
            "max_new_tokens": cfg.max_new_tokens,
            "batch_size": cfg.batch_size,
            "greedy": True,
            "runtime_s": round(runtime, 3),
            "new_tokens": new_tokens,
            "new_tokens_per_s": round(new_tokens / runtime, 1) if runtime > 0 else 0.0,
        },
        "predictions_path": "predictions.jsonl",
    }
    write_eval_summary(run_dir, summary)
    t = summary["totals"]
    log(f"eval: exact {t['exact']}/{t['n']}, normalised {t['normalised']}/{t['n']}, contains {t['contains']}/{t['n']} "
        f"({runtime:.1f} s, {summary['generation']['new_tokens_per_s']} new tokens/s)")
    return summary
