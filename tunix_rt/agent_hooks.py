"""Entries written by an AI coding agent's tool-call hooks (Claude Code's PreToolUse / PostToolUse /
PostToolUseFailure payloads): the pre-call event opens an entry, the post-call event closes the same
entry, found by `tool_use_id`, so the log holds what was actually called, stamped by the clock.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tunix_rt import ledger, milestones
from tunix_rt.errors import TunixError
from tunix_rt.models import Entry
from tunix_rt.project import Project

_TITLE_WIDTH = 72
_ERROR_WIDTH = 300


class HookPayload(BaseModel):
    """The fields tunix-rt reads; the agent sends more (transcript_path, cwd, ...), which are ignored."""

    model_config = ConfigDict(extra="ignore")

    hook_event_name: Literal["PreToolUse", "PostToolUse", "PostToolUseFailure"]
    session_id: str
    tool_name: str
    tool_input: dict[str, Any] = {}
    tool_use_id: str | None = None
    tool_response: Any = None
    error: str | None = None


def parse(raw: str) -> HookPayload:
    try:
        return HookPayload.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise TunixError(f"hook payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise TunixError(f"hook payload: {where}: {first['msg']}") from exc


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _files(tool_input: dict[str, Any]) -> list[str]:
    return [str(tool_input[key]) for key in ("file_path", "notebook_path", "path") if tool_input.get(key)]


def _title(payload: HookPayload) -> str:
    """What was called, in one line: the command for a shell, the path for a file tool."""
    data = payload.tool_input
    subject = data.get("command") or data.get("file_path") or data.get("notebook_path") or data.get("pattern") \
        or data.get("url") or data.get("query") or data.get("description")
    return _shorten(f"{payload.tool_name}: {subject}" if subject else payload.tool_name, _TITLE_WIDTH)


def _purpose(payload: HookPayload) -> str:
    description = payload.tool_input.get("description")
    return _shorten(str(description), 500) if description else f"{payload.tool_name} tool call (agent hook)"


def ingest(project: Project, milestone: str | None, payload: HookPayload) -> Entry:
    """Opens an entry on PreToolUse; completes (or fails) it on PostToolUse(Failure).

    A post-call event whose pre-call entry is missing (a hook configured for PostToolUse only)
    writes a closed entry directly.
    """
    failed = payload.hook_event_name == "PostToolUseFailure"
    status = "failed" if failed else "completed"
    status_text = _failure_text(payload) if failed else None
    if payload.hook_event_name == "PreToolUse":
        return _record(project, milestone, payload, "in-progress", None)
    mid = project.resolve_milestone(milestone)
    number = None
    if payload.tool_use_id is not None:
        with ledger.writer(project.ledger(mid)) as w:
            number = w.entry_for_tool_use(payload.tool_use_id)
    if number is None:  # no pre-call entry: record the finished call on its own
        return _record(project, mid, payload, status, status_text)
    return milestones.update_entry(
        project, mid, number, status=status, status_text=status_text, sections=_error_section(payload), source="hook",
    )


def _record(
    project: Project, milestone: str | None, payload: HookPayload, status: str, status_text: str | None
) -> Entry:
    return milestones.add_entry(
        project, milestone, title=_title(payload), tools=[payload.tool_name], purpose=_purpose(payload),
        files=_files(payload.tool_input), status=status, status_text=status_text, sections=_error_section(payload),
        source="hook", agent_session_id=payload.session_id, tool_use_id=payload.tool_use_id,
    )


def _failure_text(payload: HookPayload) -> str:
    lines = (payload.error or "").strip().splitlines()
    return f"FAILED — {_shorten(lines[0], 120) if lines else 'tool call failed'}"


def _error_section(payload: HookPayload) -> list[tuple[str, str]]:
    if payload.hook_event_name != "PostToolUseFailure" or not (payload.error or "").strip():
        return []
    return [("Error", _shorten(payload.error or "", _ERROR_WIDTH))]
