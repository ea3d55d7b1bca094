"""Adoption at the size of the hand-run project the corpus comes from: `milestone start` (which now reads every file
under the milestones folder, every branch and every commit subject to refuse ids in use) and `import --all`.

The repository built here has 50 milestones in Phase1/3/4/5, 175 empty `Temp/` placeholders, 9 hand-written logs
(the layouts of tests/data), two closing commits per milestone and filler commits up to 257 in all. `start` is
compared with `start` in a repository with one commit and no milestones, rounds interleaved, medians reported.

    python bench/adoption.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
LOGS = sorted((DATA / "legacy").glob("*.md")) + [DATA / "adoption" / "M11_toolcalls.md"]
MILESTONES = "ProjectFiles/Milestones"


def git(root: Path, *args: str, stamp: int | None = None) -> None:
    env = {**os.environ}
    if stamp is not None:
        env.update(GIT_AUTHOR_DATE=f"@{stamp} +0000", GIT_COMMITTER_DATE=f"@{stamp} +0000")
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)


def new_repo(root: Path) -> None:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Bench")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "config", "commit.gpgsign", "false")


def phase_of(n: int) -> int:
    return 1 if n <= 13 else 3 if n <= 38 else 4 if n <= 44 else 5


def build_hand_run(root: Path) -> int:
    """Returns the number of commits made."""
    new_repo(root)
    (root / "tunix-rt.md").write_text("# Project\n\n**Milestone M50 Complete** ✅\n\n## Overview\n", encoding="utf-8")
    temp = root / MILESTONES / "Temp"
    temp.mkdir(parents=True)
    for n in range(53, 88):
        for kind in ("plan", "questions", "answers", "summary", "audit"):
            (temp / f"M{n}_{kind}.md").write_bytes(b"")
    git(root, "add", "-A")
    clock, commits = 1_767_000_000, 1
    git(root, "commit", "-q", "-m", "M0: skeleton", stamp=clock)
    logs = {41 + i: path for i, path in enumerate(LOGS * 2)}  # M42..M50 keep a log, in the fixture layouts
    for n in range(1, 51):
        mid, folder = f"M{n:02d}", root / MILESTONES / f"Phase{phase_of(n)}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{mid}_plan.md").write_text(f"# Cursor Handoff Prompt — **{mid}: Work {n}**\n", encoding="utf-8")
        git(root, "add", "-A")
        clock += 600
        git(root, "commit", "-q", "-m", f"feat({mid}): implementation", stamp=clock)
        (folder / f"{mid}_summary.md").write_text(f"# {mid} Milestone Summary: Work {n}\n", encoding="utf-8")
        if n in logs:
            (folder / f"{mid}_toolcalls.md").write_bytes(logs[n].read_bytes())
        git(root, "add", "-A")
        clock += 600
        git(root, "commit", "-q", "-m", f"{mid}: Work {n} - done", stamp=clock)
        clock += 20
        git(root, "commit", "-q", "--allow-empty", "-m", f"{mid}: Finalize toolcalls log", stamp=clock)
        commits += 3
    while commits < 257:
        clock += 60
        git(root, "commit", "-q", "--allow-empty", "-m", "fix(ci): format", stamp=clock)
        commits += 1
    subprocess.run([milestone(), "init"], cwd=root, check=True, capture_output=True)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "adopt the tool", stamp=clock + 60)
    return commits + 1


def milestone() -> str:
    return str(Path(sys.executable).with_name("milestone"))


def timed(cmd: list[str], cwd: Path, expect: int = 0) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}, expected {expect}: {done.stderr.strip()}")
    return elapsed


def measure(rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tunix-rt-adoption-") as tmp:
        hand, empty = Path(tmp) / "hand", Path(tmp) / "empty"
        commits = build_hand_run(hand)
        new_repo(empty)
        subprocess.run([milestone(), "init"], cwd=empty, check=True, capture_output=True)
        git(empty, "add", "-A")
        git(empty, "commit", "-q", "-m", "initial")
        start_hand, start_empty, refuse, imports = [], [], [], []
        for i in range(rounds):  # interleaved: A B A B ..., so a load swing hits both sides
            start_hand.append(timed([milestone(), "start", f"M{88 + i}", "--title", "bench", "--phase", "5"], hand))
            start_empty.append(timed([milestone(), "start", f"M{1 + i:02d}", "--title", "bench"], empty))
            refuse.append(timed([milestone(), "start", "M44", "--title", "again"], hand, expect=2))
            copy = Path(tmp) / f"copy{i}"
            subprocess.run(["git", "clone", "-q", str(hand), str(copy)], check=True)
            imports.append(timed([milestone(), "import", "--all"], copy))
        listed = subprocess.run([milestone(), "list", "--json"], cwd=copy, check=True, capture_output=True, text=True)
        rows = json.loads(listed.stdout)
        return {
            "commits": commits,
            "milestones_imported": len(rows),
            "closed": sum(1 for row in rows if row["status"] == "closed"),
            "start_ms": round(statistics.median(start_hand) * 1000),
            "start_empty_repo_ms": round(statistics.median(start_empty) * 1000),
            "start_refused_ms": round(statistics.median(refuse) * 1000),
            "import_all_s": round(statistics.median(imports), 2),
            "rounds": rounds,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    print(json.dumps(measure(parser.parse_args().rounds), indent=2))


if __name__ == "__main__":
    shutil.which("git") or sys.exit("git is required")
    main()
