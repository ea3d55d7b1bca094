"""The hash-chained ledger (issue 11): every event links to the line before it; readers and writers refuse a
ledger whose chain breaks, naming the first broken line; ledgers from before the chain are chained from their next
event on; the agents' fast path writes the same links."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tunix_rt import ledger

LEDGER = "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl"
READERS_AND_WRITERS = (("show",), ("render",), ("log", "entry", "-t", "late", "--tool", "x", "-p", "y"))


@pytest.fixture
def m44(project, run_cli) -> Path:
    assert run_cli("start", "M44", "--title", "chain").code == 0
    for title in ("a", "b", "c"):
        assert run_cli("log", "entry", "-t", title, "--tool", "x", "-p", "y").code == 0
    assert run_cli("log", "update", "2", "--status", "completed").code == 0
    return project.root / LEDGER


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_every_line_links_to_the_one_before(m44: Path) -> None:
    lines = _lines(m44)
    links = [json.loads(line)["prev"] for line in lines]
    assert links[0] == "0" * 64
    assert links[1:] == [hashlib.sha256(line.rstrip(b"\n")).hexdigest() for line in lines[:-1]]
    assert ledger.head(m44.read_bytes()) == hashlib.sha256(lines[-1].rstrip(b"\n")).hexdigest()


def _edit(lines: list[bytes]) -> list[bytes]:
    edited = lines[:]
    edited[2] = edited[2].replace(b'"title":"a"', b'"title":"A"')
    return edited


TAMPERING = {
    # what was done: (the damaged file, the line a reader must name)
    "edit a line": (_edit, 4),
    "delete a line": (lambda lines: lines[:2] + lines[3:], 3),
    "swap two lines": (lambda lines: lines[:2] + [lines[3], lines[2]] + lines[4:], 3),
    "cut a line short": (lambda lines: lines[:2] + [lines[2][:40] + b"\n"] + lines[3:], 3),
    "move the first line": (lambda lines: lines[1:2] + lines[:1] + lines[2:], 1),
    "append a forged line without a link": (lambda lines: lines + [_forged(lines, prev=None)], "past the end"),
    "append a forged line with a wrong link": (lambda lines: lines + [_forged(lines, prev="f" * 64)], "past the end"),
}


def _forged(lines: list[bytes], prev: str | None) -> bytes:
    event = json.loads(lines[-1])
    event["id"] = "feedfacefeedface"
    event["time"] = "2026-01-01T00:00:00Z"
    if prev is None:
        del event["prev"]
    else:
        event["prev"] = prev
    return json.dumps(event, separators=(",", ":")).encode("utf-8") + b"\n"


@pytest.mark.parametrize("case", list(TAMPERING), ids=list(TAMPERING))
def test_a_damaged_chain_is_refused_by_readers_and_writers_naming_the_line(m44: Path, run_cli, case: str) -> None:
    damage, line = TAMPERING[case]
    original = _lines(m44)
    line = len(original) + 1 if line == "past the end" else line
    damaged = b"".join(damage(original))
    m44.write_bytes(damaged)
    for args in READERS_AND_WRITERS:
        result = run_cli(*args)
        assert result.code == 2, (case, args, result)
        assert f"M44.ledger.jsonl:{line}:" in result.err, (case, args, result.err)
        assert result.err.count("\n") == 1
    assert m44.read_bytes() == damaged  # nothing was appended or repaired


def test_a_ledger_from_before_the_chain_keeps_working_and_is_chained_from_its_next_event(m44: Path, run_cli) -> None:
    unchained = []
    for line in _lines(m44):
        event = json.loads(line)
        del event["prev"]
        unchained.append(json.dumps(event, separators=(",", ":")).encode("utf-8") + b"\n")
    m44.write_bytes(b"".join(unchained))
    assert run_cli("show").code == 0
    assert run_cli("log", "entry", "-t", "d", "--tool", "x", "-p", "y").code == 0
    lines = _lines(m44)
    assert json.loads(lines[-1])["prev"] == hashlib.sha256(lines[-2].rstrip(b"\n")).hexdigest()
    assert [e.title for e in ledger.load(m44).entries] == ["a", "b", "c", "d"]
    # From there on the chain holds: removing an old unchained line is not caught, a chained one is.
    m44.write_bytes(b"".join(lines[:-2] + lines[-1:]))
    assert run_cli("show").code == 2


def test_the_agents_fast_path_writes_the_same_links(m44: Path, run_cli) -> None:
    from tunix_rt.agents import fastlog
    from tunix_rt.agents.drafts import Draft

    draft = Draft(title="Bash: ls", tool="Bash", purpose="list", files=[], status="in-progress", status_text="",
                  sections=[])
    assert fastlog.record(str(m44), "pre", "call-1", True, "s1", draft, None) == "opened"
    assert fastlog.record(str(m44), "post", "call-1", True, "s1", draft, ("completed", "", [])) == "closed"
    lines = _lines(m44)
    for before, line in zip(lines[-3:-1], lines[-2:]):
        assert json.loads(line)["prev"] == hashlib.sha256(before.rstrip(b"\n")).hexdigest()
    assert run_cli("log", "entry", "-t", "after", "--tool", "x", "-p", "y").code == 0
    ledger.read(m44)  # the whole chain holds
