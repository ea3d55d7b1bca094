"""CPU time of one agent hook event (`milestone log hook`) on a 10,000-entry ledger, against a bare Python
start that imports json, measured in the same run.

Each round runs the floor, then a pre-call event, the floor again, then the post-call event that closes
the same entry (A B A C): load swings hit both alike, and medians decide. CPU time (user + system of
the child, from getrusage) is what the goal is stated in; wall time is reported beside it.
Goal: median hook event <= 3x the floor's median CPU time. The Stop event that brings the view up to date
afterwards is timed once, and the view it leaves is checked against a full `milestone render`.
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENTRIES = 10_000
GOAL = 3.0


def timed(cmd: list[str], cwd: Path, stdin: str | None = None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def payload(event: str, n: int) -> str:
    data = {"hook_event_name": event, "session_id": "bench", "transcript_path": "/tmp/t.jsonl", "cwd": ".",
            "tool_name": "Bash", "tool_use_id": f"toolu_{n:05d}",
            "tool_input": {"command": f"pytest -q tests/test_{n}.py", "description": "Run one test file"}}
    if event == "PostToolUse":
        data["tool_response"] = {"stdout": "\n".join(f"line {i}" for i in range(60)) + "\n12 passed in 3.41s",
                                 "stderr": "", "interrupted": False}
    return json.dumps(data)


def measure(rounds: int) -> dict:
    sys.path.insert(0, str(HERE))
    from history import append_entries

    from tunix_rt import milestones
    from tunix_rt.project import Project

    milestone = [str(Path(sys.executable).with_name("milestone"))]
    floor = [sys.executable, "-c", "import json"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        project = Project.find(root)
        milestones.start(project, "M44", "agent hooks benchmark")
        append_entries(project, "M44", ENTRIES)
        hook = [*milestone, "log", "hook", "--agent", "claude-code"]
        for n in range(2):  # warm the page cache and the bytecode
            timed(floor, root)
            timed(hook, root, payload("PreToolUse", 90_000 + n))
        cpu: dict[str, list[float]] = {"floor": [], "pre": [], "post": []}
        wall: dict[str, list[float]] = {"floor": [], "pre": [], "post": []}
        for n in range(rounds):
            for name, cmd, stdin in (("floor", floor, None), ("pre", hook, payload("PreToolUse", n)),
                                     ("floor", floor, None), ("post", hook, payload("PostToolUse", n))):
                c, w = timed(cmd, root, stdin)
                cpu[name].append(c)
                wall[name].append(w)
        ledger_lines = project.ledger("M44").read_text(encoding="utf-8").count("\n")
        assert ledger_lines == 2 + ENTRIES + 2 + 2 * rounds, "every hook event must be one ledger line"
        stop = json.dumps({"hook_event_name": "Stop", "session_id": "bench", "stop_hook_active": False})
        stop_cpu, stop_s = timed(hook, root, stop)  # appends the blocks of the calls made since the last render
        view = project.ledger("M44").with_name("M44_toolcalls.md").read_bytes()
        subprocess.run([*milestone, "render"], cwd=root, check=True, stdout=subprocess.DEVNULL)
        assert project.ledger("M44").with_name("M44_toolcalls.md").read_bytes() == view, "Stop must equal a full render"
        far_back = time.perf_counter()  # for scale: amending an entry far back folds and renders everything
        subprocess.run([*milestone, "log", "update", "5", "--status", "failed"], cwd=root, check=True,
                       stdout=subprocess.DEVNULL)
        far_back_s = time.perf_counter() - far_back
    med_cpu = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
    med_wall = {k: statistics.median(v) * 1000 for k, v in wall.items()}
    ratios = {k: med_cpu[k] / med_cpu["floor"] for k in ("pre", "post")}
    rows = [
        {"benchmark": f"log hook, {label} event, CPU ({ENTRIES:,} entries)", "measured": f"{med_cpu[k]:.0f} ms",
         "baseline": f"python -c 'import json' {med_cpu['floor']:.0f} ms", "ratio": ratios[k],
         "goal": f"≤ {GOAL:g}× floor", "met": ratios[k] <= GOAL}
        for k, label in (("pre", "pre-call"), ("post", "post-call"))
    ]
    rows.append({"benchmark": f"log hook, Stop event after {rounds} calls ({ENTRIES:,} entries)",
                 "measured": f"{stop_s * 1000:.0f} ms wall, {stop_cpu * 1000:.0f} ms CPU", "baseline": "—",
                 "ratio": None, "goal": "—", "met": None})
    rows.append({"benchmark": f"log update of entry 5 of {ENTRIES:,} (not the last block: full re-render)",
                 "measured": f"{far_back_s * 1000:.0f} ms", "baseline": "—", "ratio": None, "goal": "—", "met": None})
    return {"entries": ENTRIES, "rounds": rounds, "median_cpu_ms": med_cpu, "median_wall_ms": med_wall,
            "ratio_cpu_vs_floor": ratios, "goal": GOAL, "stop_ms": stop_s * 1000, "stop_cpu_ms": stop_cpu * 1000,
            "update_far_back_ms": far_back_s * 1000,
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 15)))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "agent_hooks.json")
    args = parser.parse_args()
    result = measure(args.rounds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    c, w = result["median_cpu_ms"], result["median_wall_ms"]
    print(f"floor python -c 'import json': CPU {c['floor']:.1f} ms, wall {w['floor']:.1f} ms")
    for k in ("pre", "post"):
        print(f"log hook {k}: CPU {c[k]:.1f} ms ({result['ratio_cpu_vs_floor'][k]:.2f}x floor), wall {w[k]:.1f} ms")
    print(f"Stop event (view catch-up): wall {result['stop_ms']:.0f} ms, CPU {result['stop_cpu_ms']:.0f} ms")


if __name__ == "__main__":
    main()
