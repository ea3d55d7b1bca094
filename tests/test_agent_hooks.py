"""Agent hooks: each agent's payload stream folds into one entry per tool call, and a hook never blocks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _support import PLANTED_TOKEN, replay, run_hook, stream

from tunix_rt import ledger
from tunix_rt.agents import briefing, drafts

HOOK = [sys.executable, "-m", "tunix_rt.launch", "log", "hook"]


@pytest.fixture
def m44(project, run_cli):
    assert run_cli("start", "M44", "--title", "agent hooks").code == 0
    return project


def entries(run_cli) -> list[dict]:
    return json.loads(run_cli("show", "--json").out)["entries"]


def ledger_file(project):
    return project.root / "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl"


def view_file(project):
    return project.root / "ProjectFiles/Milestones/Phase1/M44_toolcalls.md"


def section(entry: dict, name: str) -> str:
    return "\n".join(item for s in entry["sections"] if s["name"] == name for item in s["items"])


def test_claude_code_stream_one_entry_per_call(m44, run_cli) -> None:
    runs = replay("claude-code", m44.root)
    assert [r.code for r in runs] == [0] * len(runs), [r.err for r in runs if r.code]
    got = entries(run_cli)
    by_id = {e["tool_use_id"]: e for e in got}
    # interleaved sessions, a duplicate post, a post before its pre: still one entry per call
    assert [e["tool_use_id"] for e in got] == ["toolu_01A", "toolu_01B", "toolu_01C", "toolu_01D", "toolu_01E",
                                               "toolu_01G", "toolu_01H"]
    bash = by_id["toolu_01A"]
    assert bash["status"] == "completed" and bash["source"] == "hook" and bash["agent_session_id"] == "cc-A"
    assert "cd backend && HF_TOKEN=[REDACTED] python -m pytest -q tests/" in section(bash, "Command")
    assert "12 passed in 3.41s" in section(bash, "Output")
    assert by_id["toolu_01B"]["agent_session_id"] == "cc-B" and by_id["toolu_01B"]["files"] == ["train.py"]
    assert section(by_id["toolu_01B"], "Output") == ""  # a file read's content is not an output to keep
    assert by_id["toolu_01C"]["files"] == ["src/model.py"] and by_id["toolu_01C"]["status"] == "completed"
    assert section(by_id["toolu_01D"], "Subagent") == "Explore (a7f3c2)"
    failed = by_id["toolu_01E"]
    assert failed["status"] == "failed"
    assert failed["status_text"] == "FAILED — FAILED tests/test_eval.py::test_accuracy - AssertionError: 0.31 < 0.4"
    assert by_id["toolu_01G"]["status_text"].startswith("INTERRUPTED")
    assert by_id["toolu_01H"]["status"] == "in-progress"
    assert not any("milestone log entry" in e["title"] for e in got)  # the tool logs its own commands
    for path in (ledger_file(m44), view_file(m44)):
        assert PLANTED_TOKEN not in path.read_text(encoding="utf-8")
    prompts = list((m44.git_dir / "tunix-rt" / "agents").glob("*.prompts.jsonl"))
    assert len(prompts) == 1 and PLANTED_TOKEN not in prompts[0].read_text(encoding="utf-8")


def test_session_start_answers_with_a_briefing(m44, run_cli) -> None:
    (run,) = [run_hook(p) for p in stream("claude-code", m44.root)[:1]]
    answer = json.loads(run.out)["hookSpecificOutput"]
    assert answer["hookEventName"] == "SessionStart"
    assert answer["additionalContext"].startswith("tunix-rt milestone M44 — agent hooks [open]")
    assert len(json.loads(run_cli("show", "--json").out)["sessions"]) == 2  # `log session`
    compact = {**stream("claude-code", m44.root)[0], "source": "compact"}
    assert run_hook(compact).code == 0
    assert len(json.loads(run_cli("show", "--json").out)["sessions"]) == 2  # compaction: the session goes on


def test_briefing_is_cut_below_claude_codes_limit() -> None:
    text = briefing.cut("x" * 25_000, "`milestone show M44`")
    assert len(text) <= 10_000 and text.endswith("the rest: `milestone show M44`]")


def test_views_after_the_fast_path_are_byte_identical_to_a_full_render(m44, run_cli) -> None:
    replay("claude-code", m44.root)  # ends with Stop, which renders the view the fast path left behind
    after_stop = view_file(m44).read_bytes()
    assert b"toolu" not in after_stop and b"12 passed in 3.41s" in after_stop
    assert run_cli("render").code == 0
    assert view_file(m44).read_bytes() == after_stop
    assert run_cli("log", "entry", "-t", "Manual step", "--tool", "x", "-p", "y").code == 0
    manual = view_file(m44).read_bytes()
    assert run_cli("render").code == 0 and view_file(m44).read_bytes() == manual


def test_checkpoint_attaches_to_the_work_not_the_milestone_call(m44, run_cli) -> None:
    # a ledger written before hooks skipped milestone calls: the last entry is the agent's `milestone` call
    assert run_cli("log", "entry", "-t", "Train", "--tool", "x", "-p", "y").code == 0
    from tunix_rt import milestones

    milestones.add_entry(m44, None, title="Bash: milestone log entry -t x", tools=["Bash"], purpose="p",
                         source="hook", tool_use_id="toolu_x")
    assert run_cli("log", "checkpoint", "trained").code == 0
    train, call = entries(run_cli)
    assert (train["checkpoint"], call["checkpoint"]) == ("trained", None)


def test_codex_apply_patch_files_are_the_entrys_files(m44, run_cli) -> None:
    runs = replay("codex", m44.root)
    assert [r.code for r in runs] == [0] * len(runs)
    assert json.loads(runs[0].out)["hookSpecificOutput"]["additionalContext"].startswith("tunix-rt milestone M44")
    patch, test = entries(run_cli)
    assert patch["files"] == ["src/model.py", "tests/test_lr.py"]
    assert patch["title"] == "apply_patch: src/model.py, tests/test_lr.py" and patch["status"] == "completed"
    assert "*** Update File: src/model.py" in section(patch, "Command")
    assert test["status"] == "completed" and "1 passed in 0.02s" in section(test, "Output")


def test_gemini_stream(m44, run_cli) -> None:
    runs = replay("gemini", m44.root)
    assert [r.code for r in runs] == [0] * len(runs)
    assert all(json.loads(r.out) is not None for r in runs)  # Gemini parses stdout as JSON
    assert json.loads(runs[0].out)["hookSpecificOutput"]["additionalContext"].startswith("tunix-rt milestone M44")
    shell, write = entries(run_cli)
    assert shell["status"] == "completed" and "accuracy 0.42" in section(shell, "Output")
    assert write["files"] == ["notes/result.md"] and write["status"] == "failed"
    assert write["status_text"] == "FAILED — Permission denied: notes/ is read-only"


def test_cursor_stream(m44, run_cli) -> None:
    runs = replay("cursor", m44.root)
    assert [r.code for r in runs] == [0] * len(runs)
    shell, read, edit, mcp = entries(run_cli)
    assert shell["title"] == "Shell: pip install -r requirements.txt" and shell["status"] == "completed"
    assert "Successfully installed numpy-2.1.0" in section(shell, "Output")
    assert (read["title"], read["files"], read["status"]) == ("Read: config.yaml", ["config.yaml"], "completed")
    assert "lr: 0.001" not in json.dumps(read)  # the file's content is not kept
    assert edit["files"] == ["config.yaml"] and "lr: 0.0003" in section(edit, "Input")
    assert mcp["tools"] == ["query_runs"] and '"runs": 3' in section(mcp, "Output")


def test_a_repeated_identical_command_is_two_calls_for_agents_without_call_ids(m44, run_cli) -> None:
    before, after = stream("cursor", m44.root)[1:3]
    for _ in range(2):
        run_hook(before)
        run_hook(after)
    run_hook(after)  # a duplicate delivery of the last post event
    assert [e["status"] for e in entries(run_cli)] == ["completed", "completed"]


def test_the_agent_flag_wins_over_detection(m44, run_cli) -> None:
    assert run_hook(stream("codex", m44.root)[3], "--agent", "codex").code == 0
    assert run_hook({"hook_event_name": "PreToolUse"}, "--agent", "nobody").code == 1


@pytest.mark.parametrize(
    "bad",
    ["not json", "[1, 2]", "[" * 100_000 + "]" * 100_000, '{"hook_event_name": "PreToolUse"}',
     '{"hook_event_name": "PreToolUse", "session_id": "s", "tool_name": 3}'],
    ids=["not-json", "array", "deeply-nested", "no-session", "tool-not-a-string"],
)
def test_bad_payloads_exit_1_never_2_and_write_nothing(m44, bad: str) -> None:
    before = ledger_file(m44).read_bytes()
    done = subprocess.run(HOOK, cwd=m44.root, input=bad, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done  # 2 would block the agent's tool call
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert ledger_file(m44).read_bytes() == before
    assert "milestone log hook" in (m44.git_dir / "tunix-rt" / "hooks.log").read_text(encoding="utf-8")


def test_the_typer_command_delegates_and_never_exits_2(m44, run_cli) -> None:
    done = subprocess.run([sys.executable, "-m", "tunix_rt.cli", "log", "hook", "--agent", "claude-code"],
                          cwd=m44.root, input=json.dumps(stream("claude-code", m44.root)[2]), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert entries(run_cli)[0]["tool_use_id"] == "toolu_01A"


def test_no_current_milestone_records_nothing_and_does_not_fail(project) -> None:
    run = run_hook(stream("claude-code", project.root)[2])
    assert run.code == 0
    assert "no current milestone" in (project.git_dir / "tunix-rt" / "hooks.log").read_text(encoding="utf-8")


def test_a_closed_milestone_is_not_written(m44, run_cli) -> None:
    from tunix_rt.models import ClosedInfo, MilestoneClosed

    with ledger.writer(ledger_file(m44)) as w:
        w.append(MilestoneClosed(time="2026-01-08T12:00:00Z", closed=ClosedInfo(time="2026-01-08T12:00:00Z")))
    before = ledger_file(m44).read_bytes()
    assert run_hook(stream("claude-code", m44.root)[2]).code == 0
    assert ledger_file(m44).read_bytes() == before


def test_a_torn_last_line_is_repaired_then_the_call_recorded(m44, run_cli) -> None:
    with open(ledger_file(m44), "ab") as handle:
        handle.write(b'{"schema_version":1,"time":"2026-01-08T12:00:00Z","kind":"entry_ad')
    assert run_hook(stream("claude-code", m44.root)[2]).code == 0
    assert [e["tool_use_id"] for e in entries(run_cli)] == ["toolu_01A"]


@pytest.mark.parametrize(
    ("error", "line"),
    [("Exit code 1\nTraceback (most recent call last):\n  File x\nValueError: bad",
      "Traceback (most recent call last):"),
     ("Exit code 2\nerror: unrecognized arguments: --fast", "error: unrecognized arguments: --fast"),
     ("Command exited with code 1", "Command exited with code 1"),
     ("Exit code 1\nsomething happened", "something happened")],
)
def test_the_error_line_is_not_the_exit_code_preamble(error: str, line: str) -> None:
    assert drafts.error_line(error) == line


@pytest.mark.parametrize(
    ("command", "skipped"),
    [("milestone log entry -t x", True), ("cd repo && milestone log checkpoint done", True),
     ("HF_HUB_OFFLINE=1 .venv/bin/milestone run train --plugin torch-sft", True),
     ("python -m tunix_rt.cli status", True), ("pytest -q && milestone log checkpoint ok", False),
     ("echo milestone", False), ("git commit -m 'milestone M44'", False)],
)
def test_milestone_calls_are_recognised(command: str, skipped: bool) -> None:
    assert drafts.is_milestone_call(command) is skipped


def test_output_keeps_the_last_40_lines_and_4_kb() -> None:
    text = drafts.tail("\n".join(f"line {i}" for i in range(1000)))
    assert text.startswith("[… earlier output cut]") and text.endswith("line 999")
    assert text.count("\n") == 40
    wide = drafts.tail("\n".join("y" * 500 for _ in range(30)))
    assert len(wide.encode("utf-8")) <= 4096 + 30


def test_stop_appends_the_new_blocks_and_matches_a_full_render(m44, run_cli) -> None:
    from tunix_rt.agents import typed

    events = stream("claude-code", m44.root)
    for payload in events[:11]:  # up to the subagent's call, before any stop event
        assert run_hook(payload).code == 0
    assert typed.refresh_view(str(m44.root), "M44") == "caught-up"
    assert typed.refresh_view(str(m44.root), "M44") == "fresh"
    caught_up = view_file(m44).read_bytes()
    assert run_cli("render").code == 0 and view_file(m44).read_bytes() == caught_up
    run_hook({**events[2], "tool_use_id": "toolu_late"})  # a new call left open ...
    assert typed.refresh_view(str(m44.root), "M44") == "caught-up"
    run_hook({**events[4], "tool_use_id": "toolu_late"})  # ... finished after the view showed it open
    assert typed.refresh_view(str(m44.root), "M44") == "rendered"
    rendered = view_file(m44).read_bytes()
    assert run_cli("render").code == 0 and view_file(m44).read_bytes() == rendered
