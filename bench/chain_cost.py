"""What the ledger's hash chain costs `milestone log entry`, against the same command one commit before the chain.

Baseline: commit 3cb1b86 (the tree just before `ledger: hash chain`), checked out in a temporary git worktree
and imported through PYTHONPATH; the current tree is the other variant. Each variant gets its own repository
with 1,000 entries (made by its own code), and the two commands alternate A B B A ... so load swings on a
shared machine hit both alike. Measured as the child's CPU time (user + system), which contention changes far
less than wall time. Goal: the chain adds under 5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE = "3cb1b86"
GOAL = 1.05
MAKE_REPO = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2] + "/bench")
import log_entry
log_entry.make_repo(Path(sys.argv[1]), 1000)
"""
ENTRY = ["log", "entry", "--title", "Bench", "--tool", "run_terminal_cmd", "--purpose", "Measure latency",
         "--file", "train.py", "--section", "Results=fine"]


def cpu_of(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    assert not done.stderr, done.stderr  # a warning means the variant did not do the same work
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        trees = {"baseline": base / "baseline", "chained": ROOT}
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(trees["baseline"]), BASELINE], cwd=ROOT,
                       check=True)
        try:
            envs = {name: {**os.environ, "PYTHONPATH": str(tree)} for name, tree in trees.items()}
            for name, tree in trees.items():
                # cwd outside both trees: `python -c` puts the cwd first on sys.path, ahead of PYTHONPATH
                subprocess.run([sys.executable, "-c", MAKE_REPO, str(base / f"repo-{name}"), str(tree)],
                               env=envs[name], cwd=base, check=True)
            cmd = [sys.executable, "-c", "from tunix_rt.launch import main; main()", *ENTRY]
            samples: dict[str, list[float]] = {"baseline": [], "chained": []}
            for i in range(rounds + 1):
                order = ("baseline", "chained") if i % 2 == 0 else ("chained", "baseline")
                for name in order:
                    spent = cpu_of(cmd, base / f"repo-{name}", envs[name])
                    if i:  # the first round warms the page cache and the bytecode
                        samples[name].append(spent)
            ledgers = {name: (base / f"repo-{name}/ProjectFiles/Milestones/Phase1/M44.ledger.jsonl").read_bytes()
                       for name in trees}
            assert b'"prev":"' in ledgers["chained"].splitlines()[-1], "the chained variant must write links"
            assert b'"prev"' not in ledgers["baseline"], "the baseline must be the code before the chain"
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(trees["baseline"])], cwd=ROOT, check=False)
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    ratio = medians["chained"] / medians["baseline"]
    return {"rounds": rounds, "baseline_commit": BASELINE, "median_cpu_ms": medians, "ratio": ratio, "goal": GOAL,
            "rows": [{"benchmark": "`log entry` at 1,000 entries, hash chain (CPU time)",
                      "measured": f"{medians['chained']:.0f} ms", "baseline": f"{medians['baseline']:.0f} ms at {BASELINE}",
                      "ratio": ratio, "goal": f"<= {GOAL}x", "met": ratio <= GOAL}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 21)))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "chain_cost.json")
    args = parser.parse_args()
    result = measure(args.rounds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["median_cpu_ms"]
    verdict = "met" if result["ratio"] <= GOAL else "NOT met"
    print(f"log entry at 1,000 entries, CPU: {m['baseline']:.0f} ms before the chain ({BASELINE}), "
          f"{m['chained']:.0f} ms chained; ratio {result['ratio']:.3f} (goal <= {GOAL}, {verdict})")


if __name__ == "__main__":
    main()
