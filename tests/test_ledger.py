"""The ledger's promises: locked appends, torn-tail tolerance, refusal of malformed middle lines."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO_ROOT

from tunix_rt import ledger, milestones
from tunix_rt.errors import TunixError

LEDGER = "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl"


@pytest.fixture
def m44(project, run_cli):
    assert run_cli("start", "M44", "--title", "ledger").code == 0
    return project.root / LEDGER


def entry_numbers(path: Path) -> list[int]:
    return [e.entry.number for e in ledger.read(path) if e.kind == "entry_added"]


def test_every_line_is_a_versioned_event(m44, run_cli) -> None:
    run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    lines = [json.loads(line) for line in m44.read_text(encoding="utf-8").splitlines()]
    assert [line["kind"] for line in lines] == ["milestone_started", "session_started", "entry_added"]
    assert all(line["schema_version"] == 1 and line["time"].endswith("Z") for line in lines)


def test_torn_last_line_is_ignored_with_a_warning_and_removed_by_the_next_writer(m44, run_cli) -> None:
    run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    complete = m44.read_bytes()
    with open(m44, "ab") as handle:
        handle.write(b'{"schema_version":1,"time":"2026-01-08T12:00:00Z","kind":"entry_ad')
    r = run_cli("show", "--json")
    assert r.code == 0 and "incomplete" in r.err
    assert len(json.loads(r.out)["entries"]) == 1
    r = run_cli("log", "entry", "-t", "b", "--tool", "x", "-p", "y")
    assert (r.code, r.out.strip()) == (0, "2")
    assert m44.read_bytes().startswith(complete)
    assert entry_numbers(m44) == [1, 2]


def test_malformed_middle_line_refuses_every_reader_and_is_never_rewritten(m44, run_cli) -> None:
    run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    lines = m44.read_bytes().splitlines(keepends=True)
    lines.insert(1, b"<<<<<<< HEAD\n")
    m44.write_bytes(b"".join(lines))
    before = m44.read_bytes()
    for args in (["show"], ["status"], ["list"], ["render"]):
        r = run_cli(*args)
        assert r.code == 2, args
        assert f"{LEDGER}:2" in r.err and r.err.count("\n") == 1, r.err
    assert m44.read_bytes() == before
    # An amendment of an entry far back must fold the history, so it refuses too; amending the
    # latest entry is an append like `log entry` (next test) and reads only the tail.
    run_cli("log", "entry", "-t", "b", "--tool", "x", "-p", "y")
    before = m44.read_bytes()
    r = run_cli("log", "update", "1", "--status", "completed")
    assert r.code == 2 and f"{LEDGER}:2" in r.err, r
    assert m44.read_bytes() == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"kind":"session_started"', '"kind":"nonsense"'),  # a damaged line far back
        ('"schema_version":1,"time"', '"schema_version":2,"time"'),  # a newer tool wrote it (D22)
    ],
)
def test_a_ledger_readers_refuse_takes_no_append(m44, run_cli, old: str, new: str) -> None:
    """The writer refuses what readers refuse (D22): appending would bury the damage under new events."""
    run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    text = m44.read_text(encoding="utf-8")
    assert old in text
    m44.write_text(text.replace(old, new, 1), encoding="utf-8")
    before = m44.read_bytes()
    for args in (("log", "entry", "-t", "b", "--tool", "x", "-p", "y"), ("log", "update", "1", "--status", "completed"),
                 ("log", "checkpoint", "c", "--standalone"), ("log", "session"), ("show",)):
        r = run_cli(*args)
        assert r.code == 2 and "M44.ledger.jsonl:" in r.err and r.err.count("\n") == 1, (args, r)
    assert m44.read_bytes() == before


def test_a_last_line_that_lost_only_its_newline_is_complete(m44, run_cli) -> None:
    """S08: the event stands, keeps its number, and the next writer completes the line."""
    run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    m44.write_bytes(m44.read_bytes().rstrip(b"\n"))
    assert [e.number for e in ledger.load(m44).entries] == [1]
    r = run_cli("log", "entry", "-t", "b", "--tool", "x", "-p", "y")
    assert (r.code, r.out.strip()) == (0, "2")
    state = ledger.load(m44)
    assert [(e.number, e.title) for e in state.entries] == [(1, "a"), (2, "b")]


def test_a_duplicated_line_is_refused_by_readers_and_writers(m44, run_cli) -> None:
    """D21: a copied line (same event id) is refused, never rendered twice; so is the same event appended twice."""
    run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    run_cli("log", "update", "1", "--section", "Results=ok")
    lines = m44.read_bytes().splitlines(keepends=True)
    for copy in ([*lines, lines[-1]], [*lines[:-1], lines[1], lines[-1]]):
        m44.write_bytes(b"".join(copy))
        for args in (("show",), ("render",), ("log", "entry", "-t", "b", "--tool", "x", "-p", "y")):
            r = run_cli(*args)
            assert r.code == 2 and "repeats the event of line" in r.err, (args, r)
    m44.write_bytes(b"".join(lines))
    event = ledger.read(m44)[-1]
    with ledger.writer(m44) as w, pytest.raises(TunixError, match="twice"):
        w.append(event)
    assert m44.read_bytes() == b"".join(lines)


def test_writer_truncate_takes_back_only_its_own_appends(m44) -> None:
    with ledger.writer(m44) as w:
        size = w.size_before
        with pytest.raises(ValueError):
            w.truncate(size - 1)
        w.truncate(size)
    assert m44.stat().st_size == size


def test_threads_never_share_a_number(project, m44) -> None:
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(25):
                milestones.add_entry(project, "M44", title=f"t{k}-{i}", tools=["x"], purpose="p")
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(entry_numbers(m44)) == list(range(1, 201))
    assert entry_numbers(m44) == list(range(1, 201))  # file order is allocation order


WORKER = """
import sys
from tunix_rt.project import Project
from tunix_rt import milestones
project = Project.find()
for i in range(int(sys.argv[1])):
    milestones.add_entry(project, "M44", title=f"w{sys.argv[2]}-{i}", tools=["x"], purpose="p")
"""


@pytest.mark.slow
def test_processes_never_share_a_number(project, m44) -> None:
    """8 processes x 100 entries -> entries 1..800, each once, ledger valid, view complete."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, "100", str(k)], cwd=project.root, stderr=subprocess.PIPE)
        for k in range(8)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert entry_numbers(m44) == list(range(1, 801))
    view = m44.with_name("M44_toolcalls.md").read_text(encoding="utf-8")
    assert view.count("### Entry ") == 800
    before = view
    assert milestones.render_views(project, "M44")
    assert m44.with_name("M44_toolcalls.md").read_text(encoding="utf-8") == before


def test_symlinked_ledger_outside_the_repo_is_refused(project, run_cli, tmp_path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("", encoding="utf-8")
    folder = project.root / "ProjectFiles/Milestones/Phase1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "M09.ledger.jsonl").symlink_to(outside)
    r = run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--milestone", "M09")
    assert r.code == 2 and "outside the repository" in r.err
    assert outside.read_text(encoding="utf-8") == ""


def test_fold_rejects_a_ledger_without_start(tmp_path) -> None:
    path = tmp_path / "M01.ledger.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(TunixError):
        ledger.load(path)


def test_core_never_imports_torch() -> None:
    code = "import sys, tunix_rt.cli, tunix_rt.milestones; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.slow
def test_racing_starts_of_one_id_make_exactly_one_milestone(project) -> None:
    """The ledger is linked into place whole, so one start wins and no empty ledger is ever left."""
    from conftest import MILESTONE

    procs = [
        subprocess.Popen([*MILESTONE, "start", "M77", "--title", f"racer {k}"], cwd=project.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(6)
    ]
    results = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]
    assert sorted(code for code, _ in results) == [0, 2, 2, 2, 2, 2], results
    assert all("already exists" in err for code, err in results if code == 2)
    path = project.root / "ProjectFiles/Milestones/Phase1/M77.ledger.jsonl"
    events = ledger.read(path)
    assert [e.kind for e in events] == ["milestone_started", "session_started"]
    assert not list(path.parent.glob(".*.tmp"))


def test_create_refuses_an_existing_ledger_and_leaves_no_temporary_file(m44) -> None:
    before = m44.read_bytes()
    with pytest.raises(TunixError, match="already exists"):
        ledger.create(m44, ledger.read(m44))
    assert m44.read_bytes() == before
    assert not list(m44.parent.glob(".*.tmp"))


def test_a_writer_kept_waiting_says_so_once(project, m44, run_cli) -> None:
    """While another process holds the ledger (a close running its tests), log entry waits and says why."""
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); time.sleep(2.0)", str(m44)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    r = run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y")
    waited = time.monotonic() - started
    holder.wait()
    assert (r.code, r.out.strip()) == (0, "1")
    assert waited >= 1.0
    assert r.err.count("waiting for M44.ledger.jsonl") == 1, r.err
