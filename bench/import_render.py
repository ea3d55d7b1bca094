"""`milestone import` of every hand-written tool-calls log, and `milestone render` of a 1,000-entry milestone.

Import: for each log (the real corpus when ../shared/corpus is present, else the fixtures in
tests/data), the median in-process time of `legacy.parse(legacy.decode(...))` against the
median time of a bare markdown-it-py parse of the same text (the floor any CommonMark importer
pays), and the median wall time of the whole `milestone import` command in a fresh repository.
Render: the median wall time of `milestone render` on a milestone of 1,000 entries and 3 runs,
against the floor app (bench/floor_app.py: typer + pydantic + sandboxed Jinja). Goal: <= 2 s.
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
ROOT = HERE.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "tunix-rt"
FIXTURES = ROOT / "tests" / "data"
RENDER_GOAL_S = 2.0


def logs() -> tuple[str, list[Path]]:
    """The real logs when the corpus is here; otherwise every tool-calls fixture the tests own."""
    if CORPUS.is_dir():
        found = sorted(CORPUS.glob("*_toolcalls.md"))
        if found:
            return "corpus", found
    return "fixtures", sorted(p for p in FIXTURES.rglob("*.md") if "toolcalls" in p.name.lower())


def git_repo(root: Path) -> None:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    for key, value in (("user.name", "Bench"), ("user.email", "bench@example.com"), ("commit.gpgsign", "false")):
        subprocess.run(["git", "config", key, value], cwd=root, check=True)


def milestone_cmd() -> list[str]:
    return [str(Path(sys.executable).with_name("milestone"))]


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_ms(fn, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def measure_import(rounds: int, base: Path) -> dict:
    source, files = logs()
    try:
        from tunix_rt import legacy
    except ImportError:
        return {"source": source, "skipped": "tunix_rt.legacy is not installed yet", "files": {}}
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    per_file: dict[str, dict] = {}
    for path in files:
        data = path.read_bytes()
        text = data.decode("utf-8", "replace")
        legacy.parse(legacy.decode(data, str(path)))  # warm caches and imports
        parse_ms = median_ms(lambda: legacy.parse(legacy.decode(data, str(path))), rounds)
        floor_ms = median_ms(lambda: md.parse(text), rounds)
        cli_samples = []
        for k in range(max(3, rounds // 3)):
            repo = base / f"import-{path.stem}-{k}"
            git_repo(repo)
            cli_samples.append(timed(milestone_cmd() + ["import", str(path), "--milestone", "M43"], repo))
            shutil.rmtree(repo)
        per_file[path.name] = {
            "bytes": len(data),
            "parse_ms": parse_ms,
            "markdown_it_ms": floor_ms,
            "ratio_vs_markdown_it": parse_ms / floor_ms if floor_ms else None,
            "cli_ms": statistics.median(cli_samples) * 1000,
        }
    return {"source": source, "rounds": rounds, "files": per_file}


def make_render_repo(root: Path, entries: int, runs: int) -> None:
    """A milestone of `entries` entries and `runs` recorded runs, written straight to its ledger."""
    from tunix_rt import clock, ledger, milestones
    from tunix_rt.models import Entry, EntryAdded, Run, RunRecorded, Section
    from tunix_rt.project import Project

    git_repo(root)
    project = Project.find(root)
    milestones.start(project, "M44", "render benchmark")
    stamp = clock.stamp()
    events = [
        EntryAdded(time=stamp, entry=Entry(
            number=n, label=str(n), title=f"Step {n}", timestamp=stamp, tools=["run_terminal_cmd"],
            purpose="Benchmark history", files=["train.py"], status="completed",
            sections=[Section(name="Results", items=["loss 1.0 -> 0.5", "ok"])],
        ))
        for n in range(1, entries + 1)
    ]
    events += [
        RunRecorded(time=stamp, run=Run(id=f"m44_v{k}", kind="train", plugin="torch-sft", path=f"submission_runs/m44_v{k}",
                                        status="completed", started=stamp, ended=stamp, metrics={"train_loss": 1.0 / k}))
        for k in range(1, runs + 1)
    ]
    with ledger.writer(project.ledger("M44")) as w:
        w.append(*events)


def measure_render(rounds: int, base: Path, entries: int = 1_000, runs: int = 3) -> dict:
    repo = base / "render"
    make_render_repo(repo, entries, runs)
    view = repo / "ProjectFiles/Milestones/Phase1/M44_toolcalls.md"
    render_cmd = milestone_cmd() + ["render", "--milestone", "M44"]
    floor_cmd = [sys.executable, str(HERE / "floor_app.py"), "--title", "Bench", "--purpose", "x", "--out", str(base / "floor.md")]
    timed(render_cmd, repo)
    timed(floor_cmd, base)
    render_s, floor_s = [], []
    for _ in range(rounds):  # interleaved so noise hits both alike
        floor_s.append(timed(floor_cmd, base))
        render_s.append(timed(render_cmd, repo))
    text = view.read_text(encoding="utf-8")
    assert text.count("### Entry ") == entries, "the rendered view must hold every entry"
    render_ms = statistics.median(render_s) * 1000
    floor_ms = statistics.median(floor_s) * 1000
    return {
        "entries": entries,
        "runs": runs,
        "rounds": rounds,
        "render_ms": render_ms,
        "floor_ms": floor_ms,
        "ratio_vs_floor": render_ms / floor_ms,
        "view_bytes": len(text.encode("utf-8")),
        "goal_s": RENDER_GOAL_S,
        "met": render_ms / 1000 <= RENDER_GOAL_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 11)))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "import_render.json")
    args = parser.parse_args()
    os.environ.setdefault("TUNIX_RT_NOW", "2026-01-08T12:00:00Z")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        result = {"import": measure_import(args.rounds, base), "render": measure_render(args.rounds, base)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    imp = result["import"]
    if imp.get("skipped"):
        print(f"import: skipped ({imp['skipped']})")
    for name, row in imp["files"].items():
        print(f"import {name:<22} {row['bytes']:>7} B  parse {row['parse_ms']:.1f} ms "
              f"({row['ratio_vs_markdown_it']:.2f}x markdown-it)  CLI {row['cli_ms']:.0f} ms")
    r = result["render"]
    print(f"render {r['entries']} entries + {r['runs']} runs: {r['render_ms']:.0f} ms "
          f"({r['ratio_vs_floor']:.2f}x floor {r['floor_ms']:.0f} ms), goal <= {RENDER_GOAL_S:.0f} s")


if __name__ == "__main__":
    main()
