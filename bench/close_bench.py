"""`milestone close --no-commit --skip-hooks` on a milestone of 1,000 entries and 3 runs, against a 2 s goal.

The repository is built once (entries appended straight to the ledger, three evidence folders with
real files and hashes); each round restores the documents close writes, then times the console
script end to end in a subprocess (interpreter start and imports included, as a user sees it).
Prints the median, the ratio to the goal, and writes bench/results/close.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_S = 2.0
ENTRIES = 1_000
RUNS = 3


def make_repo(root: Path) -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _close_support import make_run  # the same evidence folders the tests use

    from history import append_entries

    from tunix_rt import milestones, scaffold
    from tunix_rt.project import Project

    root.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Bench"], ["config", "user.email", "b@example.com"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    project = Project.find(root)
    scaffold.init(project)
    (root / "README.md").write_text("# bench\n", encoding="utf-8")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=root, check=True)
    project = Project.find(root)
    milestones.start(project, "M44", "Benchmark close", phase=4)
    append_entries(project, "M44", ENTRIES, failed_every=100, attempts=True)
    for k in range(1, RUNS + 1):
        make_run(project, "M44", f"m44_v{k}", steps=300)
    for n in range(20):
        (root / f"src_{n}.py").write_text("".join(f"x{i} = {i}\n" for i in range(50)), encoding="utf-8")


def measure(rounds: int) -> dict:
    milestone = str(Path(sys.executable).with_name("milestone"))
    cmd = [milestone, "close", "--no-commit", "--skip-hooks", "--summary", "Benchmark"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root)
        env = dict(os.environ, TUNIX_RT_NOW="2026-01-08T12:00:00Z")
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"close failed: {done.stderr}")
        ledger_lines = sum(1 for _ in open(root / "ProjectFiles/Milestones/Phase4/M44.ledger.jsonl", "rb"))
    median = statistics.median(times)
    return {
        "entries": ENTRIES,
        "runs": RUNS,
        "ledger_lines": ledger_lines,
        "rounds": rounds,
        "times_s": [round(t, 4) for t in times],
        "median_s": round(median, 4),
        "goal_s": GOAL_S,
        "ratio_to_goal": round(median / GOAL_S, 3),
        "met": median <= GOAL_S,
        "rows": [{
            "benchmark": f"close --no-commit --skip-hooks ({ENTRIES} entries, {RUNS} runs)",
            "measured": f"{median:.3f} s (median of {rounds})",
            "baseline": f"goal {GOAL_S:g} s",
            "ratio": round(median / GOAL_S, 3),
            "goal": "<= 1.0",
            "met": median <= GOAL_S,
        }],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "close.json")
    args = parser.parse_args()
    result = measure(args.rounds)
    print(f"close --no-commit --skip-hooks, {ENTRIES} entries + {RUNS} runs: median {result['median_s']:.3f} s "
          f"over {args.rounds} rounds; {result['ratio_to_goal']:.2f}x the {GOAL_S:g} s goal "
          f"({'met' if result['met'] else 'NOT met'})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
