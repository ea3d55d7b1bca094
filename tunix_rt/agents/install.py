"""Merges tunix-rt's hook handlers into an agent's own settings file, and takes them out again.

Every setting and hook the user already has is kept; a second install changes no byte; uninstall
removes only the handlers whose command is this tool's `log hook --agent AGENT`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt.errors import TunixError

# (settings file, events with a tool matcher, events without one) per agent, from each agent's hooks docs.
TARGETS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "claude-code": (".claude/settings.json", ("PreToolUse", "PostToolUse", "PostToolUseFailure"),
                    ("SessionStart", "UserPromptSubmit", "Stop", "SubagentStop", "SessionEnd")),
    "codex": (".codex/hooks.json", ("PreToolUse", "PostToolUse"), ("SessionStart", "UserPromptSubmit", "Stop")),
    "gemini": (".gemini/settings.json", ("BeforeTool", "AfterTool"),
               ("SessionStart", "BeforeAgent", "AfterAgent", "SessionEnd")),
    "cursor": (".cursor/hooks.json", (), (
        "beforeSubmitPrompt", "beforeShellExecution", "afterShellExecution", "beforeMCPExecution",
        "afterMCPExecution", "afterFileEdit", "beforeReadFile", "stop")),
}


@dataclass(frozen=True)
class Change:
    """What install/uninstall did (or, with --dry-run, would do) to one settings file."""

    path: Path
    changed: bool
    before: str
    after: str

    def diff(self, root: Path) -> str:
        name = self.path.relative_to(root).as_posix()
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
                                            f"a/{name}", f"b/{name}"))


def milestone_executable() -> str:
    """The absolute path of the installed `milestone` script (the one running now, when it is that)."""
    running = Path(sys.argv[0])
    if running.name in ("milestone", "milestone.exe") and running.exists():
        return str(running.resolve())
    beside = Path(sys.executable).with_name("milestone.exe" if os.name == "nt" else "milestone")
    if beside.exists():
        return str(beside)
    found = shutil.which("milestone")
    if found:
        return str(Path(found).resolve())
    raise TunixError("cannot find the installed `milestone` script: pip install tunix-rt first")


def command(agent: str, executable: str) -> str:
    quoted = f'"{executable}"' if os.name == "nt" and " " in executable else shlex.quote(executable)
    return f"{quoted} log hook --agent {agent}"


def _ours(agent: str) -> re.Pattern[str]:
    return re.compile(r"""milestone(?:\.exe)?['"]? log hook --agent """ + re.escape(agent) + r"$")


def _handler(agent: str, cmd: str) -> dict[str, Any]:
    if agent == "cursor":
        return {"command": cmd}
    handler: dict[str, Any] = {"type": "command", "command": cmd}
    if agent == "gemini":
        handler["name"] = "tunix-rt"
    return handler


def _is_ours(agent: str, item: Any) -> bool:
    command = item.get("command") if isinstance(item, dict) else None
    return isinstance(command, str) and bool(_ours(agent).search(command))


def _load(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    except (OSError, UnicodeDecodeError) as exc:
        raise TunixError(f"cannot read {path}: {exc}") from exc
    if not text.strip():
        return text, {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TunixError(f"{path} is not valid JSON ({exc}); fix it by hand first, nothing was changed") from exc
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise TunixError(f"{path}: expected a JSON object with a `hooks` object; nothing was changed")
    return text, data


def _strip(agent: str, hooks: dict[str, Any]) -> None:
    """Removes this tool's handlers (for `agent`) from every event, and groups/events left empty by that."""
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            if agent == "cursor":
                if not _is_ours(agent, group):
                    kept.append(group)
                continue
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                inner = [h for h in group["hooks"] if not _is_ours(agent, h)]
                if not inner and len(inner) != len(group["hooks"]):
                    continue  # the group held only our handler
                group = {**group, "hooks": inner}
            kept.append(group)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]


def _merged(agent: str, data: dict[str, Any], cmd: str | None) -> dict[str, Any]:
    data = json.loads(json.dumps(data))  # a deep copy that keeps key order
    hooks = data.setdefault("hooks", {})
    _strip(agent, hooks)
    if cmd is not None:
        _, with_matcher, plain = TARGETS[agent]
        for event in (*with_matcher, *plain):
            if agent == "cursor":
                entry: dict[str, Any] = _handler(agent, cmd)
            else:
                entry = {"hooks": [_handler(agent, cmd)]}
                if agent == "claude-code" and event in with_matcher:
                    entry = {"matcher": "*", **entry}
            hooks.setdefault(event, []).append(entry)
        if agent == "cursor":
            data = {"version": data.get("version", 1), **{k: v for k, v in data.items() if k != "version"}}
    if not hooks:
        del data["hooks"]
    return data


def _installed(agent: str, data: dict[str, Any], cmd: str) -> bool:
    """True when every event already runs exactly `cmd` once and no other handler of ours is left."""
    _, with_matcher, plain = TARGETS[agent]
    hooks = data.get("hooks", {})
    for event in (*with_matcher, *plain):
        groups = hooks.get(event)
        if not isinstance(groups, list):
            return False
        handlers = groups if agent == "cursor" else [
            h for g in groups if isinstance(g, dict) and isinstance(g.get("hooks"), list) for h in g["hooks"]]
        ours = [h for h in handlers if _is_ours(agent, h)]
        if len(ours) != 1 or ours[0].get("command") != cmd:
            return False
    return True


def _apply(root: Path, agent: str, cmd: str | None, dry_run: bool) -> Change:
    if agent not in TARGETS:
        raise TunixError(f"unknown agent {agent!r}: use one of {', '.join(TARGETS)}")
    path = root / TARGETS[agent][0]
    before, data = _load(path)
    if cmd is not None and _installed(agent, data, cmd):
        return Change(path, False, before, before)
    merged = _merged(agent, data, cmd)
    if merged == data or (not before and not merged):
        return Change(path, False, before, before)
    after = json.dumps(merged, indent=2, ensure_ascii=False) + "\n"
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(after, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    return Change(path, True, before, after)


def install(root: Path, agent: str, *, dry_run: bool = False, executable: str | None = None) -> Change:
    """Adds (or updates) this tool's hook handlers in the agent's project settings file."""
    return _apply(root, agent, command(agent, executable or milestone_executable()), dry_run)


def uninstall(root: Path, agent: str, *, dry_run: bool = False) -> Change:
    """Removes this tool's hook handlers, and nothing else, from the agent's project settings file."""
    return _apply(root, agent, None, dry_run)
