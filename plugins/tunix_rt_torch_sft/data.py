"""Reasoning-trace and eval-set loading, the training text format, tokenisation with completion-only labels, and
batching.

Training text: the prompt, a newline, one `Step k: ...` line per reasoning step, `Answer: ...`,
then EOS. The hand-run project trained on the prompt alone with no EOS, so its model learned to
repeat questions; here the loss falls on the steps, the answer and the EOS (the prompt is masked
unless `completion_only_loss` is off). Nothing is padded to `max_seq_length`: batches are padded
to their own longest sample (grouped by length) or flattened into one row with per-sample
position ids.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt.errors import TunixError

IGNORE = -100


@dataclass
class Trace:
    prompt: str
    steps: list[str]
    final_answer: str
    line: int


@dataclass
class EvalItem:
    id: str
    prompt: str
    expected: str
    section: str
    category: str
    difficulty: str
    line: int


@dataclass
class Loaded:
    path: Path
    sha256: str
    records: list[Any]
    lines: int
    invalid: list[str] = field(default_factory=list)  # "line N: why", when skip_invalid is on


def format_prompt(prompt: str) -> str:
    return prompt.strip() + "\n"


def format_completion(steps: list[str], final_answer: str) -> str:
    lines = [f"Step {k}: {text}" for k, text in enumerate(steps, start=1)]
    lines.append(f"Answer: {final_answer}")
    return "\n".join(lines)


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{what} must be a string")
    return str(value).strip()


def _parse_trace(obj: Any, line: int) -> Trace:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "prompt" not in obj:
        raise ValueError("missing 'prompt'")
    prompt = _text(obj["prompt"], "'prompt'")
    if not prompt:
        raise ValueError("empty 'prompt'")
    steps_raw = obj.get("steps", [])
    if not isinstance(steps_raw, list):
        raise ValueError("'steps' must be a list")
    steps = []
    for k, step in enumerate(steps_raw):
        if not isinstance(step, dict) or "content" not in step:
            raise ValueError(f"steps[{k}] must be an object with 'content'")
        content = _text(step["content"], f"steps[{k}].content")
        if content:
            steps.append(content)
    if "final_answer" not in obj:
        raise ValueError("missing 'final_answer'")
    answer = _text(obj["final_answer"], "'final_answer'")
    if "meta" in obj and not isinstance(obj["meta"], dict):
        raise ValueError("'meta' must be an object")
    return Trace(prompt=prompt, steps=steps, final_answer=answer, line=line)


def _parse_item(obj: Any, line: int) -> EvalItem:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "prompt" not in obj:
        raise ValueError("missing 'prompt'")
    # An eval set may also be a trace file: its final_answer is the expected answer.
    expected = obj.get("expected_answer", obj.get("final_answer"))
    if expected is None:
        raise ValueError("missing 'expected_answer'")
    meta: dict[str, Any] = obj["meta"] if isinstance(obj.get("meta"), dict) else {}
    prompt = _text(obj["prompt"], "'prompt'")
    if not prompt:
        raise ValueError("empty 'prompt'")
    return EvalItem(
        id=_text(obj.get("id", f"line-{line}"), "'id'"),
        prompt=prompt,
        expected=_text(expected, "'expected_answer'"),
        section=_text(obj.get("section", "unspecified"), "'section'"),
        category=_text(obj.get("category", meta.get("category", "unspecified")), "'category'"),
        difficulty=_text(obj.get("difficulty", "unspecified"), "'difficulty'"),
        line=line,
    )


def _load(path: Path, parse, skip_invalid: bool, what: str) -> Loaded:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TunixError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    records, invalid, count = [], [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        try:
            records.append(parse(json.loads(line), number))
        except (ValueError, json.JSONDecodeError) as exc:
            why = f"line {number}: {exc}"
            if not skip_invalid:
                raise TunixError(
                    f"{path}:{number}: invalid {what}: {exc} (set data.skip_invalid: true to skip and count such lines)"
                ) from exc
            invalid.append(why)
    if not records:
        raise TunixError(f"{path}: no valid {what} records")
    return Loaded(path=path, sha256=digest, records=records, lines=count, invalid=invalid)


def load_traces(path: Path, skip_invalid: bool = False) -> Loaded:
    loaded = _load(path, _parse_trace, skip_invalid, "reasoning trace")
    if not any(t.steps or t.final_answer for t in loaded.records):
        raise TunixError(f"{path}: no record has reasoning steps or a final answer: nothing to train on")
    return loaded


def load_eval(path: Path, skip_invalid: bool = False) -> Loaded:
    return _load(path, _parse_item, skip_invalid, "eval item")


def split_heldout(traces: list[Trace], fraction: float, seed: int) -> tuple[list[Trace], list[Trace]]:
    """Holds out a fraction of *distinct prompts*, so duplicated prompts never straddle the split."""
    if fraction <= 0:
        return traces, []
    prompts = sorted({t.prompt for t in traces})
    if len(prompts) < 10:
        return traces, []
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: max(1, math.ceil(fraction * len(prompts)))])
    return [t for t in traces if t.prompt not in held], [t for t in traces if t.prompt in held]


# --- tokenisation ----------------------------------------------------------------------------------


@dataclass
class Sample:
    input_ids: list[int]
    labels: list[int]


@dataclass
class Encoded:
    samples: list[Sample]
    no_target: int  # records whose steps + answer fell entirely beyond max_seq_length
    truncated: int


def encode(traces: list[Trace], tokenizer, max_len: int, completion_only: bool) -> Encoded:
    """Prompt ids (with the tokenizer's own special prefix, if any) + completion ids + EOS, truncated."""
    if not traces:
        return Encoded([], 0, 0)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise TunixError("the tokenizer has no EOS token: training could not teach the model to stop")
    prompts = tokenizer([format_prompt(t.prompt) for t in traces], add_special_tokens=True)["input_ids"]
    completions = tokenizer(
        [format_completion(t.steps, t.final_answer) for t in traces], add_special_tokens=False
    )["input_ids"]
    samples, no_target, truncated = [], 0, 0
    for trace, p, c in zip(traces, prompts, completions):
        ids = list(p) + list(c) + [eos]
        labels = ([IGNORE] * len(p) if completion_only else list(p)) + list(c) + [eos]
        if len(ids) > max_len:
            truncated += 1
            ids, labels = ids[:max_len], labels[:max_len]
        # The EOS alone is not a target: a record needs a step or answer token inside the window.
        kept_completion = min(len(ids), len(p) + len(c)) - len(p)
        if kept_completion <= 0 or not (trace.steps or trace.final_answer):
            no_target += 1
            continue
        if not completion_only:
            labels[0] = IGNORE  # nothing predicts the first token
        samples.append(Sample(ids, labels))
    return Encoded(samples, no_target, truncated)


# --- batching ---------------------------------------------------------------------------------------


def plan_batches(lengths: list[int], batch_size: int, mode: str, seed: int, group: int = 50) -> list[list[int]]:
    """Indices per micro-batch for one epoch.

    grouped: shuffle, then sort within mega-batches of `group` batches by length (HF's LengthGroupedSampler
    uses 50), so each batch pads little while the order stays random; random, flatten and packed: plain shuffle.
    """
    order = list(range(len(lengths)))
    rng = random.Random(seed)
    rng.shuffle(order)
    if mode == "grouped":
        mega = batch_size * group
        grouped = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
            grouped.extend(chunk)
        batches = [grouped[i : i + batch_size] for i in range(0, len(grouped), batch_size)]
        rng.shuffle(batches)
        return batches
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate_padded(samples: list[Sample], pad_id: int):
    """Right-padded to the batch's longest sample; pads masked out of attention and loss."""
    import torch

    width = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for row, s in enumerate(samples):
        n = len(s.input_ids)
        ids[row, :n] = torch.tensor(s.input_ids)
        labels[row, :n] = torch.tensor(s.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def collate_flat(samples: list[Sample]):
    """One row, samples back to back, position ids restarting per sample (padding-free).

    The first label of every sample is masked so no sample learns from its predecessor's last token;
    the model must run with use_cache=False for sdpa to keep samples from attending to each other.
    """
    import torch

    positions: list[int] = []
    ids, labels = [], []
    for s in samples:
        ids.extend(s.input_ids)
        labels.extend([IGNORE] + s.labels[1:])
        positions.extend(range(len(s.input_ids)))
    return {
        "input_ids": torch.tensor([ids]),
        "position_ids": torch.tensor([positions]),
        "labels": torch.tensor([labels]),
    }


def best_fit_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing: each sample, longest first, into the row it fills most tightly (<= 11/9 OPT + 1 rows)."""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        fits = [r for r, room in enumerate(free) if room >= lengths[i]]
        if fits:
            best = min(fits, key=free.__getitem__)
            rows[best].append(i)
            free[best] -= lengths[i]
        else:
            rows.append([i])
            free.append(capacity - lengths[i])
    return rows


def pack_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """As few rows of at most `capacity` tokens as best-fit finds, filled evenly; sample indices per row.

    Even rows matter because a batch is padded to its longest row: with the row count best-fit decreasing needs
    (or fewer, down to the volume bound), samples go longest first into the least-loaded row; when that does not
    fit, the best-fit rows are used as they are. Which samples share a micro-batch is decided beforehand at random
    (plan_batches), so packing changes only the layout, never which samples train together: the loss is that of
    the unpacked run.
    """
    tight = best_fit_rows(lengths, capacity)
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    for count in range(max(1, -(-sum(lengths) // capacity)), len(tight) + 1):
        rows: list[list[int]] = [[] for _ in range(count)]
        load = [0] * count
        for i in order:
            r = min(range(count), key=load.__getitem__)
            if load[r] + lengths[i] > capacity:
                break
            rows[r].append(i)
            load[r] += lengths[i]
        else:
            return rows
    return tight


def collate_packed(samples: list[Sample], capacity: int, pad_id: int):
    """Rows of at most `capacity` tokens, samples back to back with position ids restarting per sample.

    Rows are right-padded to the longest row by a block whose position ids also restart at 0, so transformers
    (sdpa: a block-diagonal mask from the position ids; flash_attention_2: varlen) keeps every sample, and the pad
    block, attending only to itself; pads carry no label. Attention cost is rows x capacity^2, not batch^2.
    """
    import torch

    rows = pack_rows([len(s.input_ids) for s in samples], capacity)
    width = max(sum(len(samples[i].input_ids) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            s = samples[i]
            n = len(s.input_ids)
            ids[r, at : at + n] = torch.tensor(s.input_ids)
            labels[r, at + 1 : at + n] = torch.tensor(s.labels[1:])  # nothing predicts a sample's first token
            positions[r, at : at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "position_ids": positions, "labels": labels}


def real_tokens(samples: list[Sample]) -> int:
    return sum(len(s.input_ids) for s in samples)


def collate(samples: list[Sample], mode: str, pad_id: int, capacity: int = 0):
    """One micro-batch as model inputs; `capacity` (max_seq_length) caps the rows of `packed`."""
    if mode == "packed":
        return collate_packed(samples, capacity or max(len(s.input_ids) for s in samples), pad_id)
    return collate_flat(samples) if mode == "flatten" else collate_padded(samples, pad_id)
