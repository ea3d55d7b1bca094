"""Each bad input: exit 2, one line on stderr, no traceback, ledger and views unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

BAD_INPUTS: list[tuple[str, list[str], str]] = [
    ("id with letters", ["start", "M4x", "--title", "t"], "invalid milestone id"),
    ("id without M", ["start", "44", "--title", "t"], "invalid milestone id"),
    ("negative id", ["start", "M-1", "--title", "t"], "invalid milestone id"),
    ("path id", ["start", "../M1", "--title", "t"], "invalid milestone id"),
    ("duplicate id", ["start", "M0044", "--title", "t"], "already exists"),
    ("empty title", ["start", "M45", "--title", "  "], "--title must not be empty"),
    ("negative phase", ["start", "M45", "--title", "t", "--phase", "-1"], "--phase"),
    ("missing title option", ["start", "M45"], "--title"),
    ("unknown status", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--status", "done"], "unknown status"),
    ("section without =", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--section", "Notes"], "NAME=TEXT"),
    ("section empty name", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--section", "=x"], "empty NAME"),
    ("section empty text", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--section", "Notes="], "empty TEXT"),
    ("section named like a field", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--section", "Status=done"],
     "not a field label"),
    ("section name with asterisks", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--section", "**N**=x"],
     "no '*'"),
    ("empty entry title", ["log", "entry", "-t", "", "--tool", "x", "-p", "y"], "--title must not be empty"),
    ("empty purpose", ["log", "entry", "-t", "a", "--tool", "x", "-p", " "], "--purpose must not be empty"),
    ("empty tool", ["log", "entry", "-t", "a", "--tool", "", "-p", "y"], "--tool must not be empty"),
    ("missing tool", ["log", "entry", "-t", "a", "-p", "y"], "--tool"),
    ("missing milestone", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--milestone", "M99"], "does not exist"),
    ("invalid --milestone", ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--milestone", "M4x"], "invalid"),
    ("update unknown entry", ["log", "update", "7", "--status", "failed"], "no entry 7"),
    ("update nothing", ["log", "update", "1"], "nothing to update"),
    ("update bad status", ["log", "update", "1", "--status", "FINISHED"], "unknown status"),
    ("update number not int", ["log", "update", "one", "--status", "failed"], "Invalid value for 'number'"),
    ("empty checkpoint", ["log", "checkpoint", " "], "must not be empty"),
    ("status on inline checkpoint", ["log", "checkpoint", "x", "--status", "completed"], "--standalone"),
    ("standalone bad status", ["log", "checkpoint", "x", "--standalone", "--status", "ok"], "unknown status"),
    ("empty recovered", ["log", "session", "--recovered", ""], "must not be empty"),
    ("show unknown", ["show", "M98"], "does not exist"),
    ("import missing file", ["import", "nope.md", "--milestone", "M43"], "cannot read"),
    ("import existing id", ["import", "README.md", "--milestone", "M44"], "already exists"),
    ("unknown command", ["frobnicate"], "No such command"),
    ("unknown option", ["log", "entry", "--colour", "red"], "No such option"),
]


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.fixture
def m44(project, run_cli):
    run_cli("start", "M44", "--title", "bad inputs")
    run_cli("log", "entry", "-t", "first", "--tool", "x", "-p", "y")
    return project


@pytest.mark.parametrize(("case", "args", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(m44, run_cli, case: str, args: list[str], message: str) -> None:
    before = snapshot(m44.root)
    r = run_cli(*args)
    assert r.code == 2, (case, r)
    assert r.err.count("\n") == 1 and r.err.startswith("error: "), r.err
    assert message in r.err, r.err
    assert "Traceback" not in r.err + r.out
    assert snapshot(m44.root) == before


def test_not_a_git_repository(tmp_path, monkeypatch, run_cli) -> None:
    monkeypatch.chdir(tmp_path)
    r = run_cli("status")
    assert r.code == 2 and "not inside a git repository" in r.err
    assert list(tmp_path.iterdir()) == []


def test_logging_to_a_closed_milestone_is_refused(m44, run_cli) -> None:
    from tunix_rt import clock, ledger
    from tunix_rt.models import ClosedInfo, MilestoneClosed

    path = m44.ledger("M44")
    with ledger.writer(path) as w:
        w.append(MilestoneClosed(time=clock.stamp(), closed=ClosedInfo(time=clock.stamp())))
    before = path.read_bytes()
    for args in (["log", "entry", "-t", "a", "--tool", "x", "-p", "y"], ["log", "session"],
                 ["log", "checkpoint", "x", "--standalone"], ["log", "update", "1", "--status", "failed"]):
        r = run_cli(*args)
        assert r.code == 2 and "closed" in r.err, (args, r)
    assert path.read_bytes() == before
