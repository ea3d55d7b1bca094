"""`milestone log entry` latency against the floor of its own stack, at 10 / 1,000 / 10,000 entries.

Floor: bench/floor_app.py, a minimal typer app that validates one pydantic model and renders one
sandboxed Jinja template (what any CLI built on this stack pays). Runs are interleaved round by
round so machine noise hits every variant alike; medians are reported.
Goals: median at 10 entries <= 1.3x the floor; at 10,000 entries <= 1.15x its time at 10.
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
SIZES = (10, 1_000, 10_000)


def make_repo(root: Path, entries: int) -> None:
    """A repo with milestone M44 holding `entries` entries, its view rendered and cached."""
    from history import append_entries

    from tunix_rt import milestones
    from tunix_rt.project import Project

    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    project = Project.find(root)
    milestones.start(project, "M44", "benchmark")
    append_entries(project, "M44", entries)


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(rounds: int) -> dict:
    milestone = [str(Path(sys.executable).with_name("milestone"))]
    entry_args = ["log", "entry", "--title", "Bench", "--tool", "run_terminal_cmd", "--purpose", "Measure latency",
                  "--file", "train.py", "--section", "Results=fine"]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for size in SIZES:
            make_repo(base / f"r{size}", size)
        floor_cmd = [sys.executable, str(HERE / "floor_app.py"), "--title", "Bench", "--purpose", "x",
                     "--out", str(base / "floor.md")]
        samples: dict[str, list[float]] = {"floor": [], **{str(s): [] for s in SIZES}}
        for _ in range(2):  # warm the page cache and bytecode
            timed(floor_cmd, base)
            for size in SIZES:
                timed(milestone + entry_args, base / f"r{size}")
        for _ in range(rounds):
            samples["floor"].append(timed(floor_cmd, base))
            for size in SIZES:
                samples[str(size)].append(timed(milestone + entry_args, base / f"r{size}"))
        final = (base / "r10000/ProjectFiles/Milestones/Phase1/M44_toolcalls.md").read_text(encoding="utf-8")
        assert final.count("### Entry ") == 10_000 + rounds + 2, "the view must hold every entry"
    medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    return {
        "rounds": rounds,
        "median_ms": medians,
        "ratio_vs_floor": {str(s): medians[str(s)] / medians["floor"] for s in SIZES},
        "growth_10000_vs_10": medians["10000"] / medians["10"],
        "goals": {"ratio_vs_floor": 1.3, "growth_10000_vs_10": 1.15},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 21)))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "log_entry.json")
    args = parser.parse_args()
    result = measure(args.rounds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["median_ms"]
    print(f"floor (typer + pydantic + sandboxed jinja): {m['floor']:.0f} ms")
    for size in SIZES:
        print(f"log entry at {size:>6} entries: {m[str(size)]:.0f} ms  ratio {result['ratio_vs_floor'][str(size)]:.2f}x floor")
    print(f"ratio_vs_floor={result['ratio_vs_floor']['10']:.2f} growth_10000_vs_10={result['growth_10000_vs_10']:.2f}")


if __name__ == "__main__":
    main()
