"""The exit-code contract under random input: every command ends 0, 1 or 2 and never in a traceback.

Two fuzzers, bounded to a few seconds each: random arguments and option values for the CLI, and random
damage to a ledger's bytes followed by every command that reads it (and one that writes).
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_rt import cli

PHASE = "ProjectFiles/Milestones/Phase1"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)
number = st.one_of(st.integers(-(10**40), 10**40).map(str), st.sampled_from(["0", "1", "-1", "1e3", "", "nan"]))
value = st.one_of(text, number, st.sampled_from(["M44", "m44", "M0", "M" + "9" * 300, "completed", "@/dev/null", "x=y"]))


def _invoke(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.run(argv)
        except SystemExit as exc:  # --help and friends
            code = exc.code if isinstance(exc.code, int) else 0
    return code, err.getvalue()


def _assert_contract(argv: list[str]) -> None:
    code, err = _invoke(argv)  # an exception escaping cli.run fails the test with its traceback
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)


COMMANDS = st.one_of(
    st.tuples(st.just(["start"]), value, st.just("--title"), value, st.just("--phase"), number).map(
        lambda t: [*t[0], *t[1:]]
    ),
    st.tuples(st.just(["log", "entry", "--title"]), value, st.just("--tool"), value, st.just("--purpose"), value,
              st.just("--status"), value, st.just("--section"), value).map(lambda t: [*t[0], *t[1:]]),
    st.tuples(st.just(["log", "update"]), number, st.just("--status-text"), value).map(lambda t: [*t[0], *t[1:]]),
    st.tuples(st.just(["log", "checkpoint"]), value).map(lambda t: [*t[0], *t[1:]]),
    st.tuples(st.sampled_from([["show"], ["verify"], ["render", "--milestone"], ["import"], ["status", "--milestone"]]),
              value).map(lambda t: [*t[0], t[1]]),
    st.lists(value, max_size=4),  # anything at all, commands included
)


@FUZZ
@given(argv=COMMANDS)
def test_random_arguments_keep_the_exit_code_contract(project, argv: list[str]) -> None:
    _assert_contract(argv)


READERS = [["status"], ["list"], ["show", "M44"], ["render"], ["log", "entry", "-t", "a", "--tool", "x", "-p", "y"]]


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "duplicate", "drop"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
        else:
            lines = bytes(data).split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            if kind == "duplicate":
                lines.insert(index, lines[index])
            else:
                del lines[index]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@pytest.fixture
def ledger_project(project):
    for args in (["start", "M44", "--title", "fuzz"], ["log", "entry", "-t", "a", "--tool", "x", "-p", "y"],
                 ["log", "update", "1", "--section", "Results=ok"], ["log", "checkpoint", "c", "--standalone"]):
        assert cli.run(args) == 0
    path = project.root / PHASE / "M44.ledger.jsonl"
    return path, path.read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_ledger_keeps_the_exit_code_contract(ledger_project, data: st.DataObject) -> None:
    path, original = ledger_project
    path.write_bytes(data.draw(damaged(original)))
    try:
        for argv in READERS:
            _assert_contract(argv)
    finally:
        path.write_bytes(original)
