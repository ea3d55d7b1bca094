"""The README's figures that drift (test counts, how long the demo and the tests take), from a command.

    python scripts/readme_figures.py              # rewrite the README block from the counts + docs/figures.json
    python scripts/readme_figures.py --measure    # time `make demo` and the test suite first (about 15 min)
    python scripts/readme_figures.py --check      # exit 1 if the README block is stale (a test runs this)

Counts are collected from pytest on every call. Timings are measured only with --measure and kept in
docs/figures.json with the machine they were measured on, so the README never shows a hand-typed number.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures.json"
BEGIN = "<!-- figures: written by `python scripts/readme_figures.py`; do not edit by hand -->"
END = "<!-- /figures -->"


def count_tests() -> dict[str, int]:
    """Tests pytest collects, in all and marked slow (what `make test` and `make test-fast` run)."""
    def collected(*extra: str) -> int:
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               *extra], cwd=ROOT, capture_output=True, text=True, check=True)
        found = re.search(r"^(\d+) tests? collected", done.stdout, re.M) or re.search(r"(\d+)/\d+ tests? collected",
                                                                                      done.stdout)
        assert found, done.stdout[-500:]
        return int(found.group(1))

    total = collected()
    return {"tests": total, "slow": total - collected("-m", "not slow")}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(encoding="utf-8", errors="replace"), re.M)
        cpu = found.group(1).strip() if found else cpu
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def measure() -> dict[str, object]:
    """Times `make demo`, then the suite exactly as `make test` runs it (its output shown, so a failure is seen;
    a failing step records nothing)."""
    def timed(*command: str) -> float:
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True)
        return round(time.perf_counter() - started)

    subprocess.run(["make", "setup"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    demo_s = timed("make", "demo")
    # The one test that checks this block would fail while the block is being measured for.
    tests_s = timed(".venv/bin/python", "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
                    "no:cacheprovider", "--deselect", "tests/test_readme.py::test_the_readme_figures_are_current")
    return {"measured": datetime.date.today().isoformat(), "machine": machine(), "demo_s": demo_s,
            "tests_s": tests_s}


def block(counts: dict[str, int], figures: dict[str, object]) -> str:
    def minutes(seconds: object) -> str:
        s = int(str(seconds))
        return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"

    lines = [BEGIN,
             f"- The suite has **{counts['tests']} tests**, {counts['slow']} of them marked `slow` (training, load, "
             "browser, MLflow server); `make test` runs all of them, `make test-fast` the others."]
    if figures:
        lines.append(f"- Measured {figures['measured']} on {figures['machine']}: `make demo` took "
                     f"{minutes(figures['demo_s'])} and `make test` {minutes(figures['tests_s'])} (virtual "
                     "environment already built). Another machine gives other times.")
    lines += ["- Losses, eval scores and evidence digests reproduce bit for bit on the same CPU and the same "
              "torch/transformers build (seeded, deterministic kernels); another CPU or build gives close, not equal, "
              "numbers.", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="time `make demo` and the tests first")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README block is stale; write nothing")
    args = parser.parse_args(argv)
    if args.measure:
        FIGURES.parent.mkdir(exist_ok=True)
        FIGURES.write_text(json.dumps(measure(), indent=2) + "\n", encoding="utf-8")
    figures = json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.is_file() else {}
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, re.S)
    if found is None:
        print(f"README.md has no figures block ({BEGIN} … {END})", file=sys.stderr)
        return 2
    wanted = block(count_tests(), figures)
    if args.check:
        if found.group(0) != wanted:
            print("README.md figures are stale: run `python scripts/readme_figures.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(text[:found.start()] + wanted + text[found.end():], encoding="utf-8")
    print(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
