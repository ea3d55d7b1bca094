"""`milestone agent audit`: a Claude Code transcript reconciled with the ledger by tool-use id."""

from __future__ import annotations

import json
import shutil

import pytest
from _support import AGENT_DATA, run_hook


@pytest.fixture
def audited(project, run_cli):
    """M44 whose hooks caught only the first call of the transcript; the transcript copied into the repo."""
    assert run_cli("start", "M44", "--title", "audit").code == 0
    shutil.copytree(AGENT_DATA / "transcript", project.root / "t")
    for event in ("PreToolUse", "PostToolUse"):
        run_hook({"hook_event_name": event, "session_id": "cc-A", "tool_name": "Bash", "tool_use_id": "toolu_01A",
                  "tool_input": {"command": "cd backend && python -m pytest -q tests/"},
                  "tool_response": {"stdout": "12 passed in 3.41s"}})
    return project


def test_audit_names_the_calls_whose_hooks_never_fired(audited, run_cli) -> None:
    done = run_cli("agent", "audit", "--transcript", "t/cc-A.jsonl", "--json")
    assert done.code == 0, done
    report = json.loads(done.out)
    assert report["calls"] == 5 and report["recorded"] == 1
    assert report["missing"] == ["toolu_01X", "toolu_01T", "toolu_01S"]
    assert report["skipped_milestone_calls"] == ["toolu_01F"] and report["coverage"] == 0.25
    assert report["filled"] == []


def test_fill_records_them_from_the_transcript(audited, run_cli) -> None:
    done = run_cli("agent", "audit", "--transcript", "t/cc-A.jsonl", "--fill", "--json")
    assert json.loads(done.out)["filled"] == ["toolu_01X", "toolu_01T", "toolu_01S"]
    entries = {e["tool_use_id"]: e for e in json.loads(run_cli("show", "--json").out)["entries"]}
    failure = "FAILED tests/test_eval.py::test_accuracy - AssertionError: 0.31 < 0.4"
    assert entries["toolu_01X"]["status_text"] == f"FAILED — {failure}"
    assert entries["toolu_01T"]["status"] == "in-progress"  # its result never came
    sub = entries["toolu_01S"]
    assert sub["status"] == "completed" and any(s["name"] == "Subagent" for s in sub["sections"])
    again = json.loads(run_cli("agent", "audit", "--transcript", "t/cc-A.jsonl", "--json").out)
    assert again["missing"] == [] and again["coverage"] == 1.0
    view = (audited.root / "ProjectFiles/Milestones/Phase1/M44_toolcalls.md").read_text(encoding="utf-8")
    assert "from the transcript (2026-01-08T11:59:20.000Z)" in view


def test_a_file_that_is_not_a_transcript_is_refused(audited, run_cli) -> None:
    (audited.root / "x.jsonl").write_text("not json\n", encoding="utf-8")
    done = run_cli("agent", "audit", "--transcript", "x.jsonl")
    assert done.code == 2 and "not a JSON line" in done.err
