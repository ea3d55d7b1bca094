"""`milestone log hook` on a 10,000-entry ledger: a pre-call event (an append) and the post-call event
that closes the same entry (an amendment of the view's last block, patched in place), against the
`log entry` latency measured in the same run; plus, for scale, amending an entry far back, which
folds and re-renders the whole history.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENTRIES = 10_000


def timed(cmd: list[str], cwd: Path, stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(rounds: int) -> dict:
    from history import append_entries

    from tunix_rt import milestones
    from tunix_rt.project import Project

    milestone = [str(Path(sys.executable).with_name("milestone"))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        project = Project.find(root)
        milestones.start(project, "M44", "agent hooks benchmark")
        append_entries(project, "M44", ENTRIES)
        samples: dict[str, list[float]] = {"log entry": [], "hook pre": [], "hook post": []}
        for i in range(rounds):
            payload = {"session_id": "s", "tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": f"t{i}"}
            samples["log entry"].append(timed([*milestone, "log", "entry", "-t", "a", "--tool", "x", "-p", "y"], root))
            samples["hook pre"].append(
                timed([*milestone, "log", "hook"], root, json.dumps({**payload, "hook_event_name": "PreToolUse"})))
            samples["hook post"].append(
                timed([*milestone, "log", "hook"], root, json.dumps({**payload, "hook_event_name": "PostToolUse"})))
        far_back = timed([*milestone, "log", "update", "5", "--status", "failed"], root)
    medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    rows = [
        {"benchmark": f"log hook, pre-call event ({ENTRIES:,} entries)", "measured": f"{medians['hook pre']:.0f} ms",
         "baseline": f"log entry {medians['log entry']:.0f} ms", "ratio": medians["hook pre"] / medians["log entry"],
         "goal": "—", "met": None},
        {"benchmark": f"log hook, post-call event ({ENTRIES:,} entries)", "measured": f"{medians['hook post']:.0f} ms",
         "baseline": f"log entry {medians['log entry']:.0f} ms", "ratio": medians["hook post"] / medians["log entry"],
         "goal": "—", "met": None},
        {"benchmark": f"log update of entry 5 of {ENTRIES:,} (full re-render)", "measured": f"{far_back * 1000:.0f} ms",
         "baseline": "—", "ratio": None, "goal": "—", "met": None},
    ]
    return {"entries": ENTRIES, "rounds": rounds, "median_ms": medians, "update_far_back_ms": far_back * 1000, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "agent_hooks.json")
    args = parser.parse_args()
    result = measure(args.rounds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for r in result["rows"]:
        print(f"{r['benchmark']}: {r['measured']}" + (f" ({r['ratio']:.2f}x {r['baseline']})" if r["ratio"] else ""))


if __name__ == "__main__":
    main()
