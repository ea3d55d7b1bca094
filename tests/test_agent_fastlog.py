"""The hook fast path writes what the typed path would, under the same lock, without losing an entry number."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _support import replay

from tunix_rt import ledger

HOOK = [sys.executable, "-m", "tunix_rt.launch", "log", "hook", "--agent", "claude-code"]


@pytest.fixture
def m44(project, run_cli):
    assert run_cli("start", "M44", "--title", "fast path").code == 0
    return project


def ledger_file(project):
    return project.root / "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl"


def test_fast_lines_are_byte_for_byte_what_the_schema_writes(m44) -> None:
    for agent in ("claude-code", "codex", "gemini", "cursor"):
        replay(agent, m44.root)
    lines = ledger_file(m44).read_bytes().splitlines(keepends=True)
    assert len(lines) > 20
    for number, line in enumerate(lines, start=1):
        assert ledger.encode(ledger.parse_line(ledger_file(m44), number, line)) == line


def test_hook_appends_keep_the_writers_stamp_so_the_next_write_stays_cheap(m44, run_cli) -> None:
    """The typed writer re-validates the whole ledger unless its stamp proves nobody else wrote; the fast
    path appends lines valid by construction, so it moves a valid stamp along instead of voiding it."""
    assert run_cli("log", "entry", "--title", "t", "--tool", "x", "--purpose", "p").code == 0
    stamp = m44.root / ".git/tunix-rt/ledgers/M44.ledger.jsonl.stamp"
    replay("claude-code", m44.root)
    st = ledger_file(m44).stat()
    assert stamp.read_text(encoding="ascii") == f"{st.st_ino} {st.st_size} {st.st_mtime_ns}"
    os.utime(ledger_file(m44), ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched by someone else
    st = ledger_file(m44).stat()
    assert stamp.read_text(encoding="ascii") != f"{st.st_ino} {st.st_size} {st.st_mtime_ns}"


@pytest.mark.skipif(os.name != "posix", reason="the fast path goes through portalocker itself on Windows")
def test_the_fast_path_takes_portalockers_own_posix_lock() -> None:
    import fcntl

    import portalocker.portalocker

    assert portalocker.portalocker.LOCKER is fcntl.flock


def test_concurrent_hooks_and_log_entry_never_lose_or_repeat_a_number(m44) -> None:
    def pre(n: int) -> str:
        return json.dumps({"hook_event_name": "PreToolUse", "session_id": f"s{n % 2}", "tool_name": "Bash",
                           "tool_input": {"command": f"echo {n}"}, "tool_use_id": f"toolu_{n:03d}"})

    procs = [subprocess.Popen(HOOK, cwd=m44.root, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(12)]
    by_hand = [sys.executable, "-m", "tunix_rt.cli", "log", "entry", "-t", "by hand", "--tool", "x", "-p", "y"]
    procs.append(subprocess.Popen(by_hand, cwd=m44.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for n, proc in enumerate(procs[:12]):
        proc.stdin.write(pre(n))  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    assert [proc.wait(timeout=120) for proc in procs] == [0] * 13, [p.stderr.read() for p in procs]  # type: ignore[union-attr]
    numbers = [e.number for e in ledger.load(ledger_file(m44)).entries]
    assert sorted(numbers) == list(range(1, 14))


HOOK_IMPORTS = """
import io, json, sys
from tunix_rt.launch import main
payload = {"hook_event_name": "PreToolUse", "session_id": "s1", "transcript_path": "/t/s1.jsonl", "cwd": sys.argv[1],
           "tool_name": "Bash", "tool_input": {"command": "ls -la"}, "tool_use_id": "toolu_1"}
sys.stdin = io.StringIO(json.dumps(payload))
sys.argv = ["milestone", "log", "hook", "--agent", "claude-code"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = ("pydantic", "typer", "jinja2", "portalocker", "hashlib", "dataclasses", "inspect", "datetime")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_a_tool_call_event_imports_nothing_heavy(m44) -> None:
    # The per-call path's budget is a few bare Python starts: each of these costs milliseconds (dataclasses
    # alone pulls in inspect, ast and tokenize, about 15 ms; hashlib's OpenSSL binding 5 ms).
    env = {k: v for k, v in os.environ.items() if k != "TUNIX_RT_NOW"}  # a pinned clock takes the datetime path
    done = subprocess.run([sys.executable, "-c", HOOK_IMPORTS, str(m44.root)], cwd=m44.root, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert b'"tool_use_id":"toolu_1"' in ledger_file(m44).read_bytes()  # the call was recorded
