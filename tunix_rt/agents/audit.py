"""Reconciles a Claude Code transcript with the ledger by tool-use id: which calls the hooks caught, which not.

Claude Code's hooks do not fire for every call (calls inside some subagents, calls around a crash), so
the transcript, a JSONL file of messages whose `tool_use` / `tool_result` blocks carry the same ids, is
the reference. Subagent transcripts (`<session>/subagents/*.jsonl` beside the file) are read too.
`--fill` records each missing call from the transcript, through the same path a hook event takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt import milestones
from tunix_rt.agents import drafts, fastlog, payloads, typed
from tunix_rt.errors import TunixError
from tunix_rt.project import Project


@dataclass
class TranscriptCall:
    id: str
    tool: str
    tool_input: dict[str, Any]
    session_id: str
    timestamp: str
    agent_id: str | None = None
    result: str | None = None
    is_error: bool = False
    finished: bool = False


@dataclass
class Audit:
    transcript: str
    milestone: str
    calls: int
    recorded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # the agent's own `milestone ...` commands, never recorded
    filled: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        expected = self.calls - len(self.skipped)
        return len(self.recorded) / expected if expected else 1.0


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return "\n".join(texts)
    return ""


def read_transcript(path: Path) -> list[TranscriptCall]:
    """Every tool call of a transcript (and its subagents' transcripts), in order, with its result."""
    files = [path, *sorted((path.with_suffix("") / "subagents").glob("*.jsonl"))]
    calls: dict[str, TranscriptCall] = {}
    for file in files:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TunixError(f"cannot read transcript {file}: {exc}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise TunixError(f"{file}:{number}: not a JSON line; is this a Claude Code transcript?") from None
            message = record.get("message") if isinstance(record, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                    calls.setdefault(block["id"], TranscriptCall(
                        id=block["id"], tool=str(block.get("name", "")),
                        tool_input=block["input"] if isinstance(block.get("input"), dict) else {},
                        session_id=str(record.get("sessionId", "")), timestamp=str(record.get("timestamp", "")),
                        agent_id=record.get("agentId") if record.get("isSidechain") or file != path else None,
                    ))
                elif block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                    call = calls[block["tool_use_id"]]
                    call.result, call.is_error, call.finished = _result_text(block.get("content")), \
                        block.get("is_error") is True, True
    return list(calls.values())


def _payload(call: TranscriptCall) -> dict[str, Any]:
    """The hook payload Claude Code would have sent for the call's last event."""
    data: dict[str, Any] = {"session_id": call.session_id, "tool_name": call.tool, "tool_input": call.tool_input,
                            "tool_use_id": call.id}
    if call.agent_id:
        data["agent_id"] = str(call.agent_id)
    if not call.finished:
        return {**data, "hook_event_name": "PreToolUse"}
    if call.is_error:
        return {**data, "hook_event_name": "PostToolUseFailure", "error": call.result or ""}
    return {**data, "hook_event_name": "PostToolUse", "tool_response": call.result or ""}


def audit(project: Project, milestone: str | None, transcript: Path, *, fill: bool = False) -> Audit:
    mid = project.resolve_milestone(milestone)
    state = milestones.load(project, mid)
    calls = read_transcript(transcript)
    known = {entry.tool_use_id for entry in state.entries if entry.tool_use_id}
    result = Audit(transcript=str(transcript), milestone=mid, calls=len(calls))
    for call in calls:
        command = call.tool_input.get("command") if isinstance(call.tool_input.get("command"), str) else None
        if drafts.is_milestone_call(command):
            result.skipped.append(call.id)
        elif call.id in known:
            result.recorded.append(call.id)
        else:
            result.missing.append(call.id)
    if fill and result.missing:
        if state.status == "closed":
            raise TunixError(f"milestone {mid} is closed; --fill cannot add to it")
        path = project.ledger(mid)
        by_id = {call.id: call for call in calls}
        for call_id in result.missing:
            call = by_id[call_id]
            event = payloads.parse(_payload(call), "claude-code")
            assert event.call is not None
            draft = drafts.opening(event, str(project.root))
            draft = draft._replace(sections=[*draft.sections, ("Recovered", f"from the transcript ({call.timestamp})")])
            fastlog.record(str(path), event.kind, call.id, True, event.session_id, draft, None)
            result.filled.append(call_id)
        typed.refresh_view(str(project.root), mid)
    return result
