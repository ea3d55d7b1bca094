"""Reads one hook payload of Claude Code, Codex, Gemini CLI or Cursor into one agent-neutral `HookEvent`.

Stdlib only: this module sits on the hook fast path, which runs on every tool call of an agent. Each
agent's section follows its documented hook schema (tests/data/agents/README.md names the pages);
fields an agent does not document are not relied on. Records are NamedTuples rather than dataclasses:
importing dataclasses (and with it inspect) costs a fifth of a hook's CPU budget.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

AGENTS = ("claude-code", "codex", "gemini", "cursor")
Agent = Literal["claude-code", "codex", "gemini", "cursor"]
# pre: a call is about to run; post: it ran; call: one event describes a whole call (Cursor's file
# events); session: a session (re)starts; prompt: the user submitted a prompt; stop: a turn or a
# session ended; ignore: an event tunix-rt has nothing to do with.
Kind = Literal["pre", "post", "call", "session", "prompt", "stop", "ignore"]


class PayloadError(ValueError):
    """The payload is not one an agent sends: not JSON, not an object, or a field of the wrong type."""


class ToolCall(NamedTuple):
    """One tool call as the agent described it (nothing redacted yet)."""

    tool: str
    key: str  # the agent's call id, or one derived from session + tool input when it gives none
    keyed_by_id: bool
    tool_input: dict[str, Any]
    command: str | None = None  # a shell command, or the patch text of Codex's apply_patch
    output: str | None = None
    error: str | None = None
    failed: bool = False
    interrupted: bool = False
    subagent: str | None = None
    description: str | None = None
    paths: tuple[str, ...] = ()


class HookEvent(NamedTuple):
    agent: Agent
    kind: Kind
    name: str  # the agent's own event name
    session_id: str
    cwd: str | None = None
    call: ToolCall | None = None
    prompt: str | None = None
    source: str | None = None  # why a session started: startup, resume, clear, compact


def loads(raw: str) -> dict[str, Any]:
    """The payload object; a deeply nested document is refused like any other bad payload."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"hook payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PayloadError("hook payload is nested too deeply to be an agent's hook event") from None
    if not isinstance(data, dict):
        raise PayloadError(f"hook payload must be a JSON object, not {type(data).__name__}")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise PayloadError(f"hook payload: {key} is missing")
        return None
    if not isinstance(value, str):
        raise PayloadError(f"hook payload: {key} must be a string")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # Cursor sends MCP tool input as a JSON string
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {"input": value}
    if not isinstance(value, dict):
        return {"input": value} if value is not None else {}
    return value


def _derived_key(*parts: Any) -> str:
    """A call key for agents that give no call id: the same call's pre and post events give the same key."""
    import hashlib  # only agents without call ids pay for it

    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return f"k-{digest[:20]}"


def _response_text(response: Any) -> str | None:
    """What a tool printed, from the shapes the agents document (a string, stdout/stderr, llmContent, ...)."""
    if response is None:
        return None
    if isinstance(response, str):
        return response
    if isinstance(response, dict):
        parts = [response[k] for k in ("stdout", "stderr", "output", "llmContent", "content", "result")
                 if isinstance(response.get(k), str) and response[k]]
        if parts:
            return "\n".join(parts)
        if isinstance(response.get("llmContent"), list):  # Gemini parts: [{"text": ...}, ...]
            parts = [p.get("text") for p in response["llmContent"] if isinstance(p, dict)]
            return "\n".join(text for text in parts if isinstance(text, str)) or None
    try:
        return json.dumps(response, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None


def _exit_failed(response: Any) -> bool:
    if not isinstance(response, dict):
        return False
    for key in ("exit_code", "exitCode"):
        code = response.get(key)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            return True
    return response.get("success") is False or bool(response.get("is_error"))


def _path_of(tool_input: dict[str, Any]) -> tuple[str, ...]:
    if "pattern" in tool_input:
        return ()  # a search tool's `path` is where it looked, not a file it worked on
    keys = ("file_path", "notebook_path", "path", "absolute_path")
    found = [tool_input[k] for k in keys if isinstance(tool_input.get(k), str)]
    return tuple(p for p in found if p)


def patch_paths(patch: str) -> tuple[str, ...]:
    """Files named by a Codex `apply_patch` envelope (Add/Update/Delete File, Move to)."""
    paths: list[str] = []
    for line in patch.splitlines():
        for marker in ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "):
            if line.startswith(marker) and line[len(marker):].strip() not in paths:
                paths.append(line[len(marker):].strip())
    return tuple(paths)


# --- Claude Code and Codex (the same envelope: hook_event_name, session_id, tool_use_id, ...) --------

_CLAUDE_KINDS: dict[str, Kind] = {
    "PreToolUse": "pre", "PostToolUse": "post", "PostToolUseFailure": "post", "SessionStart": "session",
    "UserPromptSubmit": "prompt", "Stop": "stop", "SubagentStop": "stop", "SessionEnd": "stop",
}


def _claude_like(agent: Agent, data: dict[str, Any]) -> HookEvent:
    name = _text(data, "hook_event_name", required=True) or ""
    kind = _CLAUDE_KINDS.get(name, "ignore")
    session = _text(data, "session_id", required=kind != "ignore") or ""
    cwd = _text(data, "cwd")
    if kind == "session":
        return HookEvent(agent, kind, name, session, cwd, source=_text(data, "source"))
    if kind == "prompt":
        return HookEvent(agent, kind, name, session, cwd, prompt=_text(data, "prompt"))
    if kind not in ("pre", "post"):
        return HookEvent(agent, kind, name, session, cwd)
    tool = _text(data, "tool_name", required=True) or ""
    tool_input = _object(data.get("tool_input"), "tool_input")
    call_id = _text(data, "tool_use_id")
    command = tool_input.get("command") if isinstance(tool_input.get("command"), str) else None
    if isinstance(tool_input.get("command"), list):  # Codex shell calls may carry argv
        command = " ".join(str(part) for part in tool_input["command"])
    paths = patch_paths(command) if tool == "apply_patch" and command else _path_of(tool_input)
    response = data.get("tool_response")
    error = _text(data, "error")
    failed = name == "PostToolUseFailure" or (kind == "post" and _exit_failed(response))
    if failed and error is None and isinstance(response, dict):
        error = _response_text({k: response.get(k) for k in ("stderr", "output", "stdout")})
    agent_id, agent_type = _text(data, "agent_id"), _text(data, "agent_type")
    subagent = " ".join(p for p in (agent_type, agent_id and f"({agent_id})") if p) or None
    description = tool_input.get("description") if isinstance(tool_input.get("description"), str) else None
    call = ToolCall(
        tool=tool,
        key=call_id or _derived_key(agent, session, tool, tool_input),
        keyed_by_id=call_id is not None,
        tool_input=tool_input,
        command=command,
        output=None if name == "PostToolUseFailure" else _response_text(response),
        error=error,
        failed=failed,
        interrupted=data.get("is_interrupt") is True,
        subagent=subagent,
        description=description,
        paths=paths,
    )
    return HookEvent(agent, kind, name, session, cwd, call=call)


# --- Gemini CLI -------------------------------------------------------------------------------------

_GEMINI_KINDS: dict[str, Kind] = {
    "BeforeTool": "pre", "AfterTool": "post", "SessionStart": "session", "BeforeAgent": "prompt",
    "AfterAgent": "stop", "SessionEnd": "stop",
}


def _gemini(data: dict[str, Any]) -> HookEvent:
    name = _text(data, "hook_event_name", required=True) or ""
    kind = _GEMINI_KINDS.get(name, "ignore")
    session = _text(data, "session_id", required=kind != "ignore") or ""
    cwd = _text(data, "cwd")
    if kind == "session":
        return HookEvent("gemini", kind, name, session, cwd, source=_text(data, "source"))
    if kind == "prompt":
        return HookEvent("gemini", kind, name, session, cwd, prompt=_text(data, "prompt"))
    if kind not in ("pre", "post"):
        return HookEvent("gemini", kind, name, session, cwd)
    tool = _text(data, "tool_name", required=True) or ""
    tool_input = _object(data.get("tool_input"), "tool_input")
    raw_response = data.get("tool_response")
    response: dict[str, Any] = raw_response if isinstance(raw_response, dict) else {}
    raw_error = response.get("error")
    error = raw_error if isinstance(raw_error, str) else None
    if isinstance(raw_error, dict) and isinstance(raw_error.get("message"), str):
        error = raw_error["message"]
    command = tool_input.get("command") if isinstance(tool_input.get("command"), str) else None
    call = ToolCall(
        tool=tool,
        key=_derived_key("gemini", session, tool, tool_input),
        keyed_by_id=False,
        tool_input=tool_input,
        command=command,
        output=_response_text({"llmContent": response.get("llmContent")}) if kind == "post" else None,
        error=error if kind == "post" else None,
        failed=kind == "post" and raw_error not in (None, "", {}),
        description=tool_input.get("description") if isinstance(tool_input.get("description"), str) else None,
        paths=_path_of(tool_input),
    )
    return HookEvent("gemini", kind, name, session, cwd, call=call)


# --- Cursor -----------------------------------------------------------------------------------------

_CURSOR_KINDS: dict[str, Kind] = {
    "beforeShellExecution": "pre", "afterShellExecution": "post", "beforeMCPExecution": "pre",
    "afterMCPExecution": "post", "afterFileEdit": "call", "beforeReadFile": "call",
    "beforeSubmitPrompt": "prompt", "stop": "stop", "sessionStart": "session",
}


def _cursor(data: dict[str, Any]) -> HookEvent:
    name = _text(data, "hook_event_name", required=True) or ""
    kind = _CURSOR_KINDS.get(name, "ignore")
    session = _text(data, "conversation_id", required=kind != "ignore") or ""
    roots = data.get("workspace_roots")
    cwd = _text(data, "cwd") or (roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None)
    generation = _text(data, "generation_id")
    if kind == "prompt":
        return HookEvent("cursor", kind, name, session, cwd, prompt=_text(data, "prompt"))
    if kind in ("stop", "session", "ignore"):
        return HookEvent("cursor", kind, name, session, cwd, source="startup" if kind == "session" else None)
    if name.endswith("ShellExecution"):
        command = _text(data, "command", required=True) or ""
        tool, tool_input, output = "Shell", {"command": command}, _text(data, "output")
    elif name.endswith("MCPExecution"):
        tool = _text(data, "tool_name", required=True) or ""
        tool_input = _object(data.get("tool_input"), "tool_input")
        command, output = None, _response_text(data.get("result_json"))
    elif name == "afterFileEdit":
        path = _text(data, "file_path", required=True) or ""
        edit_input: dict[str, Any] = {"file_path": path, "edits": data.get("edits")}
        tool, tool_input, command, output = "Edit", edit_input, None, None
    else:  # beforeReadFile: the content is the file itself, never kept
        path = _text(data, "file_path", required=True) or ""
        tool, tool_input, command, output = "Read", {"file_path": path}, None, None
    call = ToolCall(
        tool=tool,
        key=_derived_key("cursor", session, generation, tool, tool_input),
        keyed_by_id=False,
        tool_input=tool_input,
        command=command,
        output=output if kind == "post" else None,
        paths=_path_of(tool_input),
    )
    return HookEvent("cursor", kind, name, session, cwd, call=call)


def detect(data: dict[str, Any]) -> Agent:
    """Which agent sent a payload, from fields only that agent documents."""
    name = data.get("hook_event_name")
    if "conversation_id" in data or "workspace_roots" in data or (isinstance(name, str) and name[:1].islower()):
        return "cursor"
    if name in _GEMINI_KINDS and name not in _CLAUDE_KINDS or "timestamp" in data:
        return "gemini"
    if "turn_id" in data:
        return "codex"
    return "claude-code"


def parse(data: dict[str, Any], agent: str | None = None) -> HookEvent:
    """The event of a payload; `agent` (from `--agent`) wins over detection."""
    chosen = agent or detect(data)
    if chosen not in AGENTS:
        raise PayloadError(f"unknown agent {chosen!r}: use one of {', '.join(AGENTS)}")
    if chosen == "gemini":
        return _gemini(data)
    if chosen == "cursor":
        return _cursor(data)
    return _claude_like(chosen, data)  # type: ignore[arg-type]
