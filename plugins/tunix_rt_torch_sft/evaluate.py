"""Scored evaluation: batched greedy generation (left padding, EOS stop), then the core's scorers
(`tunix_rt/scoring.py`: answer extraction, exact/normalised/contains), written through the evidence contract.

The hand-run project generated one item at a time with a hard-coded 50-token budget and never
scored anything; here every item gets a generated trace, an extracted answer and three scores,
with totals and breakdowns by section, category and difficulty. `milestone eval score` uses the
same scorers, so a predictions file scored later is measured like a plugin evaluation.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tunix_rt.scoring import PRIMARY_METRIC, extract_answer, normalise, score, summarise  # noqa: F401 (re-exported)
from tunix_rt_torch_sft.data import EvalItem, format_prompt

def generate(
    model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int, device, autocast
) -> tuple[list[str], int]:
    """Greedy completions in the input order; batches of similar length, left-padded, stopping at EOS."""
    import torch

    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    new_tokens = 0
    eos, pad = (
        tokenizer.eos_token_id,
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        # No token_type_ids: a fast tokenizer loaded by transformers 4.x returns them, and generate() on a model
        # whose forward has no such argument (llama) refuses them.
        enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=True,
                        return_token_type_ids=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.no_grad(), autocast():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=pad,
                use_cache=True,
            )
        generated = out[:, enc["input_ids"].shape[1] :].tolist()
        for i, ids in zip(chunk, generated):
            if eos in ids:
                ids = ids[: ids.index(eos)]
            new_tokens += len(ids)
            outputs[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return outputs, new_tokens


def run(
    model, tokenizer, items: list[EvalItem], cfg, device, autocast, run_dir: Path, meta: dict[str, Any], log
) -> dict[str, Any]:
    """Generates, extracts, scores; writes predictions.jsonl and eval_summary.json; returns the summary."""
    from tunix_rt import evidence

    if cfg.max_items is not None:
        items = items[: cfg.max_items]
    log(f"eval: {len(items)} items, max_new_tokens {cfg.max_new_tokens}, batch {cfg.batch_size}")
    t0 = time.monotonic()
    generated, new_tokens = generate(
        model,
        tokenizer,
        [format_prompt(it.prompt) for it in items],
        cfg.max_new_tokens,
        cfg.batch_size,
        device,
        autocast,
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
    evidence.write_text(run_dir / evidence.PREDICTIONS, "\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    summary = evidence.EvalSummary(
        **meta,
        n_items=len(items),
        n_scored=len(scored),
        primary_metric=PRIMARY_METRIC,
        primary_score=round(sum(s[PRIMARY_METRIC] for s in scored) / len(scored), 4) if scored else 0.0,
        **summarise(items, scored),
        generation={
            "max_new_tokens": cfg.max_new_tokens,
            "batch_size": cfg.batch_size,
            "greedy": True,
            "runtime_s": round(runtime, 3),
            "new_tokens": new_tokens,
            "new_tokens_per_s": round(new_tokens / runtime, 1) if runtime > 0 else 0.0,
        },
        predictions_path=evidence.PREDICTIONS,
    )
    evidence.write_eval_summary(run_dir / evidence.EVAL_SUMMARY, summary)
    data = summary.model_dump(mode="json", exclude_none=True)
    t = data["totals"]
    log(f"eval: exact {t['exact']}/{t['n']}, normalised {t['normalised']}/{t['n']}, contains {t['contains']}/{t['n']} "
        f"({runtime:.1f} s, {data['generation']['new_tokens_per_s']} new tokens/s)")
    return data
