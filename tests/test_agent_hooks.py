"""Claude Code tool-call hooks fold into entries: pre opens, post closes the same entry, errors never block."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import MILESTONE


def hook(root, payload: dict | str, *extra: str) -> subprocess.CompletedProcess:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return subprocess.run([*MILESTONE, "log", "hook", *extra], cwd=root, input=data, capture_output=True, text=True,
                          timeout=60)


def payload(event: str, tool_use_id: str | None = "toolu_01", **more) -> dict:
    base = {"hook_event_name": event, "session_id": "sess-1", "transcript_path": "/tmp/t.jsonl", "cwd": "/x",
            "tool_name": "Bash", "tool_input": {"command": "pytest -q tests/", "description": "Run the tests"},
            "tool_use_id": tool_use_id}
    return {**base, **more}


@pytest.fixture
def m44(project, run_cli):
    assert run_cli("start", "M44", "--title", "agent hooks").code == 0
    return project


def entries(run_cli) -> list[dict]:
    return json.loads(run_cli("show", "--json").out)["entries"]


def test_pre_then_post_fold_into_one_completed_entry(m44, run_cli) -> None:
    assert hook(m44.root, payload("PreToolUse")).returncode == 0
    (opened,) = entries(run_cli)
    assert (opened["status"], opened["source"], opened["tool_use_id"]) == ("in-progress", "hook", "toolu_01")
    assert opened["title"] == "Bash: pytest -q tests/" and opened["purpose"] == "Run the tests"
    assert opened["agent_session_id"] == "sess-1" and opened["timestamp"] == "2026-01-08T12:00:00Z"
    assert hook(m44.root, payload("PostToolUse", tool_response={"stdout": "ok"})).returncode == 0
    (closed,) = entries(run_cli)
    assert closed["number"] == 1 and closed["status"] == "completed"


def test_interleaved_calls_close_their_own_entries(m44, run_cli) -> None:
    edit = {"tool_name": "Edit", "tool_input": {"file_path": "train.py", "old_string": "a", "new_string": "b"}}
    hook(m44.root, payload("PreToolUse", "toolu_A"))
    hook(m44.root, payload("PreToolUse", "toolu_B", **edit))
    hook(m44.root, payload("PostToolUseFailure", "toolu_A", error="exit code 1\nFAILED tests/test_x.py"))
    hook(m44.root, payload("PostToolUse", "toolu_B", **edit))
    a, b = entries(run_cli)
    assert (a["tool_use_id"], a["status"], a["status_text"]) == ("toolu_A", "failed", "FAILED — exit code 1")
    assert a["sections"] == [{"name": "Error", "items": ["exit code 1 FAILED tests/test_x.py"], "text": "", "ordered": False}]
    assert (b["tool_use_id"], b["status"], b["files"], b["title"]) == ("toolu_B", "completed", ["train.py"], "Edit: train.py")


def test_a_post_event_without_its_pre_event_records_the_finished_call(m44, run_cli) -> None:
    assert hook(m44.root, payload("PostToolUse", "toolu_lonely")).returncode == 0
    (entry,) = entries(run_cli)
    assert (entry["status"], entry["tool_use_id"]) == ("completed", "toolu_lonely")


def test_secrets_in_a_tool_call_are_redacted(m44, run_cli) -> None:
    token = "hf_" + "S" * 30
    hook(m44.root, payload("PreToolUse", tool_input={"command": f"export HF_TOKEN={token} && python train.py"}))
    ledger_text = (m44.root / "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl").read_text(encoding="utf-8")
    assert token not in ledger_text and "[REDACTED]" in ledger_text


@pytest.mark.parametrize(
    "bad",
    ["not json", json.dumps({"hook_event_name": "Stop", "session_id": "s"}), json.dumps({"hook_event_name": "PreToolUse"}),
     json.dumps([1, 2])],
)
def test_bad_payloads_exit_1_not_2_and_write_nothing(m44, bad: str) -> None:
    ledger_path = m44.root / "ProjectFiles/Milestones/Phase1/M44.ledger.jsonl"
    before = ledger_path.read_bytes()
    done = hook(m44.root, bad)
    assert done.returncode == 1, done  # 2 would block the agent's tool call
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: hook payload")
    assert ledger_path.read_bytes() == before


def test_no_current_milestone_does_not_block_the_agent(project) -> None:
    done = hook(project.root, payload("PreToolUse"))
    assert done.returncode == 1 and "no current milestone" in done.stderr
