"""Load: many writers at once, through the command line and the library, never lose or duplicate a number.

tests/test_ledger.py covers 8 processes x 100 `add_entry` and 8 threads x 25. These go further: the
CLI path (argument parsing, redaction, the incremental view) under 8 processes x 200, the real
console script from 8 parallel shells, every kind of write mixed with readers, and the view left
behind equal byte for byte to a fresh full render.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from tunix_rt import ledger, milestones
from tunix_rt.models import CheckpointAdded, EntryAdded, EntryUpdated, SessionStarted

LEDGER = "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl"
VIEW = "ProjectFiles/Milestones/Phase1/M44_toolcalls.md"


@pytest.fixture
def m44(project, run_cli):
    assert run_cli("start", "M44", "--title", "load").code == 0
    return project


def numbers(path: Path) -> list[int]:
    return [e.entry.number for e in ledger.read(path) if isinstance(e, EntryAdded)]


def assert_view_is_a_full_render(project, mid: str = "M44") -> str:
    """The incrementally built view must equal what a fresh full render writes."""
    view = project.root / f"ProjectFiles/Milestones/Phase1/{mid}_toolcalls.md"
    incremental = view.read_bytes()
    (project.git_dir / "tunix-rt" / "render" / f"{mid}.json").unlink(missing_ok=True)
    milestones.render_views(project, mid)
    assert view.read_bytes() == incremental
    return incremental.decode("utf-8")


# A worker process that calls the CLI's own entry point in a loop and prints each number it was given.
CLI_WORKER = """
import sys
from tunix_rt import cli
worker, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    code = cli.run(["log", "entry", "-t", f"w{worker}-{i}", "--tool", "run_terminal_cmd", "-p", "load",
                    "--file", f"out/{worker}.txt", "--section", f"Results=worker {worker} item {i}"])
    if code != 0:
        sys.exit(code)
"""


@pytest.mark.slow
def test_eight_processes_times_two_hundred_cli_entries(m44) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", CLI_WORKER, str(k), "200"], cwd=m44.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(8)
    ]
    printed: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        printed.extend(int(line) for line in out.split())
    # Every number handed out exactly once, and the ledger holds exactly those, in allocation order.
    assert sorted(printed) == list(range(1, 1601))
    assert numbers(m44.root / LEDGER) == list(range(1, 1601))
    titles = Counter(e.entry.title.split("-")[0] for e in ledger.read(m44.root / LEDGER) if isinstance(e, EntryAdded))
    assert titles == {f"w{k}": 200 for k in range(8)}
    view = assert_view_is_a_full_render(m44)
    assert view.count("### Entry ") == 1600


@pytest.mark.slow
def test_console_script_from_eight_parallel_shells(m44) -> None:
    """The installed `milestone` binary, 8 shells x 8 calls at once: the path users and agents take."""
    script = "for i in $(seq 1 8); do \"$MILESTONE\" log entry -t \"s$K-$i\" --tool bash -p shell || exit 1; done"
    milestone = str(Path(sys.executable).with_name("milestone"))
    procs = [
        subprocess.Popen(["bash", "-c", script], cwd=m44.root, env={**os.environ, "MILESTONE": milestone, "K": str(k)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(8)
    ]
    printed: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        printed.extend(int(line) for line in out.split())
    assert sorted(printed) == list(range(1, 65))
    assert numbers(m44.root / LEDGER) == list(range(1, 65))
    assert assert_view_is_a_full_render(m44).count("### Entry ") == 64


MIXED_WORKER = """
import random, sys
from tunix_rt import milestones
from tunix_rt.project import Project
project = Project.find()
worker, count = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(worker)
for i in range(count):
    choice = rng.random()
    if choice < 0.6:
        e = milestones.add_entry(project, "M44", title=f"p{worker}-{i}", tools=["x"], purpose="mixed")
        print("entry", e.number, flush=True)
    elif choice < 0.8:
        milestones.update_entry(project, "M44", rng.randint(1, 5), sections=[("Notes", f"p{worker}-{i}")])
        print("update", flush=True)
    elif choice < 0.9:
        milestones.add_checkpoint(project, "M44", f"cp p{worker}-{i}", standalone=True)
        print("checkpoint", flush=True)
    else:
        milestones.start_session(project, "M44")
        print("session", flush=True)
"""

READER = """
import json, sys
from tunix_rt import cli
for _ in range(int(sys.argv[1])):
    code = cli.run(["show", "--json"])
    if code != 0:
        sys.exit(code)
"""


@pytest.mark.slow
def test_every_kind_of_write_mixed_with_readers(m44, run_cli) -> None:
    """Entries, amendments, checkpoint sections and sessions from 6 processes while 2 more read the whole ledger."""
    for i in range(5):  # amendments need something to amend
        run_cli("log", "entry", "-t", f"seed {i}", "--tool", "x", "-p", "seed")
    writers = [
        subprocess.Popen([sys.executable, "-c", MIXED_WORKER, str(k), "80"], cwd=m44.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(6)
    ]
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, "25"], cwd=m44.root,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    said: Counter[str] = Counter()
    entry_numbers: list[int] = []
    for proc in writers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            kind, *rest = line.split()
            said[kind] += 1
            if rest:
                entry_numbers.append(int(rest[0]))
    for proc in readers:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err  # a reader never sees a half-written ledger
    events = ledger.read(m44.root / LEDGER)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["EntryAdded"] == 5 + said["entry"]
    assert kinds["EntryUpdated"] == said["update"]
    assert kinds["CheckpointAdded"] == said["checkpoint"]
    assert kinds["SessionStarted"] == 1 + said["session"]
    assert sorted(entry_numbers) == list(range(6, 6 + said["entry"]))
    sessions = [e.session.number for e in events if isinstance(e, SessionStarted)]
    assert sessions == list(range(1, len(sessions) + 1))  # session numbers are allocated under the lock too
    notes = {item for e in events if isinstance(e, EntryUpdated) for s in e.sections for item in s.items}
    assert len(notes) == said["update"]  # no amendment lost or applied twice
    state = json.loads(run_cli("show", "--json").out)
    assert sum(len(s["items"]) for e in state["entries"] for s in e["sections"]) == said["update"]
    assert_view_is_a_full_render(m44)


def test_eight_threads_mixed_writes_in_one_process(m44) -> None:
    """One process, 8 threads, entries and amendments interleaved: the per-process lock paths."""
    milestones.add_entry(m44, "M44", title="seed", tools=["x"], purpose="seed")
    errors: list[BaseException] = []
    got: list[int] = []
    guard = threading.Lock()

    def work(k: int) -> None:
        try:
            for i in range(40):
                if i % 4 == 3:
                    milestones.update_entry(m44, "M44", 1, sections=[("Notes", f"t{k}-{i}")])
                else:
                    number = milestones.add_entry(m44, "M44", title=f"t{k}-{i}", tools=["x"], purpose="p").number
                    with guard:
                        got.append(number)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert sorted(got) == list(range(2, 2 + 8 * 30))
    assert numbers(m44.root / LEDGER) == list(range(1, 2 + 8 * 30))
    state = milestones.load(m44, "M44")
    assert len(state.entries[0].sections[0].items) == 8 * 10
    assert_view_is_a_full_render(m44)


@pytest.mark.slow
def test_two_milestones_written_at_once_stay_apart(m44, run_cli) -> None:
    """Locks are per ledger: writers of M44 and M45 run in parallel and never cross."""
    assert run_cli("start", "M45", "--title", "second").code == 0
    worker = CLI_WORKER.replace('"log", "entry"', '"log", "entry", "--milestone", sys.argv[3]')
    procs = [
        subprocess.Popen([sys.executable, "-c", worker, str(k), "60", "M44" if k % 2 else "M45"], cwd=m44.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(6)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    for mid in ("M44", "M45"):
        path = m44.root / f"ProjectFiles/Milestones/Phase1/{mid}.ledger.jsonl"
        assert numbers(path) == list(range(1, 181))
        workers = {int(e.entry.title[1:].split("-")[0]) % 2 for e in ledger.read(path) if isinstance(e, EntryAdded)}
        assert workers == ({1} if mid == "M44" else {0})
        assert_view_is_a_full_render(m44, mid)
    assert not [e for e in ledger.read(m44.root / LEDGER) if isinstance(e, CheckpointAdded)]


# --- close racing writers ------------------------------------------------------------------------


def _closable(project, run_cli) -> None:
    assert run_cli("start", "M44", "--title", "race").code == 0
    (project.root / "work.py").write_text("print('work')\n", encoding="utf-8")
    assert run_cli("log", "entry", "-t", "work", "--tool", "write", "-p", "w", "--file", "work.py",
                   "--status", "completed").code == 0


def _trailer_commits(root: Path) -> list[str]:
    out = subprocess.run(["git", "log", "--all", "--format=%H%x00%B%x01"], cwd=root, capture_output=True, text=True,
                         check=True).stdout
    return [r.strip().split("\x00")[0] for r in out.split("\x01") if "\x00" in r and "Milestone: M44" in r.split("\x00")[1]]


@pytest.mark.slow
def test_two_closes_at_once_make_one_commit(project, run_cli) -> None:
    _closable(project, run_cli)
    milestone = str(Path(sys.executable).with_name("milestone"))
    procs = [subprocess.Popen([milestone, "close", "--skip-hooks"], cwd=project.root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2, 2], results
    assert all("already closed" in err for code, err in results if code == 2), results
    assert len(_trailer_commits(project.root)) == 1
    events = ledger.read(project.root / LEDGER)
    assert sum(type(e).__name__ == "MilestoneClosed" for e in events) == 1


@pytest.mark.slow
def test_log_entries_racing_close_are_either_committed_or_refused(project, run_cli) -> None:
    """Writers that lose the race to close are refused; writers that win are inside the closing commit."""
    _closable(project, run_cli)
    milestone = str(Path(sys.executable).with_name("milestone"))
    script = ("for i in $(seq 1 6); do \"$MILESTONE\" log entry -t \"r$K-$i\" --tool x -p race --status completed; "
              "done; exit 0")
    writers = [subprocess.Popen(["bash", "-c", script], cwd=project.root, env={**os.environ, "MILESTONE": milestone, "K": str(k)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    closer = subprocess.run([milestone, "close", "--skip-hooks", "--force"], cwd=project.root, capture_output=True,
                            text=True, timeout=300)
    acknowledged = []
    for proc in writers:
        out, err = proc.communicate(timeout=300)
        acknowledged.extend(int(line) for line in out.split())
        for line in err.splitlines():  # a refused writer says why, in one line
            if line.startswith("error: "):
                assert "closed" in line, line
    assert closer.returncode == 0, closer.stderr
    events = ledger.read(project.root / LEDGER)
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "MilestoneClosed", "nothing may be appended after the close"
    numbers = [e.entry.number for e in events if isinstance(e, EntryAdded)]
    assert sorted(acknowledged) == numbers[1:]  # every acknowledged entry is in, nothing else
    committed = subprocess.run(["git", "show", f"HEAD:{LEDGER}"], cwd=project.root, capture_output=True, check=True).stdout
    assert committed == (project.root / LEDGER).read_bytes(), "the closing commit holds the ledger as closed"
    assert len(_trailer_commits(project.root)) == 1
