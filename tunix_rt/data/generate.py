"""Generates the bundled reasoning dataset and eval set (deterministic, stdlib only): `python -m
tunix_rt.data.generate`.

Same schemas as the real project's dev-reasoning-v2 traces (prompt, steps[{i,type,content}],
final_answer, meta) and eval_v2 items (id, prompt, expected_answer, section, category, difficulty).
The tasks are deliberately easy and templated (single-digit sums, parity, successors, copying,
comparisons) so that a tiny model trained for a minute or two on a CPU answers some items right.
No eval prompt occurs in the training set.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 44
HERE = Path(__file__).parent
TRAIN = HERE / "reasoning_train.jsonl"
EVAL = HERE / "reasoning_eval.jsonl"
WORDS = (
    "apple river stone cloud tiger lemon piano rocket garden window silver candle forest ocean planet "
    "pencil mirror castle dragon violet bridge coffee market summer winter island falcon harbor meadow "
    "thunder velvet canyon orbit lantern marble copper willow glacier comet"
).split()


def _step(i: int, kind: str, content: str) -> dict:
    return {"i": i, "type": kind, "content": content}


def addition(a: int, b: int) -> tuple[str, list[dict], str, str, str]:
    c = a + b
    return (f"What is {a} + {b}?", [_step(0, "setup", f"Add {a} and {b}"), _step(1, "calculation", f"{a} + {b} = {c}")],
            str(c), "arithmetic", "easy" if c < 10 else "medium")


def successor(n: int):
    return (
        f"What number comes after {n}?",
        [_step(0, "setup", f"Add 1 to {n}"), _step(1, "calculation", f"{n} + 1 = {n + 1}")],
        str(n + 1),
        "counting",
        "easy",
    )


def parity(n: int):
    last = n % 10
    word = "even" if n % 2 == 0 else "odd"
    return (f"Is {n} even or odd?", [_step(0, "observation", f"The last digit of {n} is {last}"),
                                     _step(1, "rule", f"{last} is {word}, so {n} is {word}")],
            word, "parity", "easy")


def repeat(word: str):
    return (f"Repeat the word: {word}", [_step(0, "observation", f"The word is {word}")], word, "copying", "easy")


def larger(a: int, b: int):
    big = max(a, b)
    return (f"Which is larger, {a} or {b}?", [_step(0, "setup", f"Compare {a} and {b}"),
                                              _step(1, "comparison", f"{big} is the larger number")],
            str(big), "comparison", "medium")


def capital(word: str):
    return (f"Write the word {word} in capital letters.", [_step(0, "setup", f"The word is {word}"),
                                                           _step(1, "transform", f"In capitals: {word.upper()}")],
            word.upper(), "string", "medium")


def build() -> tuple[list[dict], list[dict]]:
    rng = random.Random(SEED)
    pool = []
    pool += [addition(a, b) for a in range(10) for b in range(10)]
    pool += [successor(n) for n in range(0, 100)]
    pool += [parity(n) for n in range(0, 100)]
    pool += [repeat(w) for w in WORDS]
    pool += [larger(a, b) for a, b in {(rng.randrange(100), rng.randrange(100)) for _ in range(120)} if a != b]
    pool += [capital(w) for w in WORDS]
    pool.sort(key=lambda item: item[0])
    rng.shuffle(pool)
    # Hold out a stratified slice per category for the eval set; the rest trains.
    per_category: dict[str, int] = {}
    eval_items, train_items = [], []
    for item in pool:
        category = item[3]
        taken = per_category.get(category, 0)
        limit = 6 if category in ("copying", "string") else 10
        if taken < limit:
            per_category[category] = taken + 1
            eval_items.append(item)
        else:
            train_items.append(item)
    train = []
    for index, (prompt, steps, answer, category, difficulty) in enumerate(train_items):
        steps = steps + [_step(len(steps), "answer", f"The answer is {answer}")]
        train.append({"trace_version": "1.0", "prompt": prompt, "final_answer": answer, "steps": steps,
                      "meta": {"dataset": "tunix-rt-bundled-v1", "generator": "tunix_rt.data.generate", "seed": SEED,
                               "category": category, "index": index}})
    evals = []
    for k, (prompt, steps, answer, category, difficulty) in enumerate(
        sorted(eval_items, key=lambda i: (i[3], i[0])), 1
    ):
        section = "trace_sensitive" if len(steps) > 1 and category in ("arithmetic", "comparison") else "core"
        if prompt in ("What is 0 + 0?", "Is 0 even or odd?", "What number comes after 99?") or prompt.endswith(" 0?"):
            section = "edge_case"
        evals.append({"id": f"bundled-{k:03d}", "prompt": prompt, "expected_answer": answer, "section": section,
                      "category": category, "difficulty": difficulty})
    assert not {t["prompt"] for t in train} & {e["prompt"] for e in evals}
    return train, evals


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8", newline="\n")


def main() -> None:
    train, evals = build()
    _write(TRAIN, train)
    _write(EVAL, evals)
    print(f"wrote {TRAIN.name} ({len(train)} traces) and {EVAL.name} ({len(evals)} items)")


if __name__ == "__main__":
    main()
