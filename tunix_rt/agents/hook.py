"""`milestone log hook`: one agent hook event from stdin, handled without ever blocking the agent.

Tool-call events (the hot path, twice per call) are recorded by `fastlog` with the standard library
only; session starts (a briefing back to the agent) and Stop (re-rendering the views) import the typed
stack, once per session or turn. Whatever goes wrong, the hook prints one line on stderr, appends it
to `.git/tunix-rt/hooks.log`, and exits 1, which every supported agent treats as a non-blocking error;
it never exits 2, which they read as "block this call".
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tunix_rt import clock
from tunix_rt.agents import drafts, fastlog, payloads

USAGE = "usage: milestone log hook [--agent claude-code|codex|gemini|cursor] [--milestone M44] < payload.json"


class HookFailed(Exception):
    """The hook could not do its work; the message is the one line the user sees."""


@dataclass(frozen=True)
class Options:
    agent: str | None = None
    milestone: str | None = None


@dataclass(frozen=True)
class Where:
    """The project a hook event belongs to, found without importing the typed stack."""

    root: Path
    state_dir: Path
    milestones_dir: Path


def parse_options(argv: list[str]) -> Options:
    agent = milestone = None
    args = list(argv)
    while args:
        flag = args.pop(0)
        name, eq, value = flag.partition("=")
        if name not in ("--agent", "--milestone"):
            raise HookFailed(f"unknown option {flag!r}; {USAGE}")
        if not eq:
            if not args:
                raise HookFailed(f"{name} needs a value; {USAGE}")
            value = args.pop(0)
        if name == "--agent":
            if value not in payloads.AGENTS:
                raise HookFailed(f"unknown agent {value!r}: use one of {', '.join(payloads.AGENTS)}")
            agent = value
        else:
            milestone = value
    return Options(agent, milestone)


def locate(start: Path) -> Where:
    """The repository holding `start`, its per-clone state folder and its milestones folder."""
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            git_dir = dot_git
        elif dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                continue
            git_dir = (folder / text.split(":", 1)[1].strip()).resolve()
        else:
            continue
        return Where(folder, git_dir / "tunix-rt", folder / _milestones_setting(folder))
    raise HookFailed(f"{start} is not inside a git repository")


def _milestones_setting(root: Path) -> str:
    for name, keys in (("pyproject.toml", ("tool", "tunix-rt")), ("milestone.toml", ())):
        try:
            data = tomllib.loads((root / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise HookFailed(f"{root / name}: {exc}") from exc
        for key in keys:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if data:
            value = data.get("milestones_dir", "ProjectFiles/Milestones")
            return value if isinstance(value, str) else "ProjectFiles/Milestones"
    return "ProjectFiles/Milestones"


def canonical(text: str) -> str:
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] not in "Mm" or not stripped[1:].isdigit() or len(stripped) > 7:
        raise HookFailed(f"invalid milestone id {text!r}: expected M followed by digits, such as M44")
    return f"M{int(stripped[1:]):02d}"


def current(where: Where, given: str | None) -> str | None:
    if given:
        return canonical(given)
    try:
        value = json.loads((where.state_dir / "state.json").read_text(encoding="utf-8")).get("current")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def ledger_path(where: Where, milestone: str) -> Path | None:
    if not where.milestones_dir.is_dir():
        return None
    for folder in sorted(where.milestones_dir.glob("Phase*")):
        candidate = folder / f"{milestone}.ledger.jsonl"
        if candidate.is_file():
            resolved = candidate.resolve()
            if where.root.resolve() not in resolved.parents:
                raise HookFailed(f"{candidate} points outside the repository ({resolved})")
            return candidate
    return None


def note(where: Where | None, message: str) -> None:
    """One line in `.git/tunix-rt/hooks.log`: the hook's own trail of what it did not record, and why."""
    if where is None:
        return
    try:
        where.state_dir.mkdir(parents=True, exist_ok=True)
        with open(where.state_dir / "hooks.log", "a", encoding="utf-8") as handle:
            handle.write(f"{clock.stamp()} {message}\n")
    except OSError:
        pass


def _tool_event(where: Where, event: payloads.HookEvent, opts: Options) -> None:
    call = event.call
    assert call is not None
    if drafts.is_milestone_call(call.command):
        return  # the tool records its own commands; a second entry would double them
    mid = current(where, opts.milestone)
    path = ledger_path(where, mid) if mid else None
    if mid is None or path is None:
        note(where, f"not recorded ({event.agent} {event.name} {call.tool}): no current milestone")
        return
    opening = drafts.opening(event, str(where.root))
    closing = drafts.closing(call) if event.kind == "post" else None
    for attempt in (1, 2):
        try:
            fastlog.record(path, event.kind, call.key, call.keyed_by_id, event.session_id, opening, closing)
            return
        except fastlog.Unusual as exc:
            if "closed" in str(exc):
                note(where, f"not recorded ({event.agent} {event.name} {call.tool}): milestone {mid} is closed")
                return
            if attempt == 2:
                raise HookFailed(f"{path.name}: {exc}") from None
            from tunix_rt.agents import typed

            typed.repair(path)  # the typed writer drops a torn last line; then try once more


def _prompt(where: Where, event: payloads.HookEvent) -> None:
    """A prompt is session context, kept per clone (never committed), redacted like everything else."""
    if not event.prompt:
        return
    folder = where.state_dir / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in event.session_id)[:80] or "session"
    line = json.dumps({"time": clock.stamp(), "agent": event.agent, "prompt": drafts.clean(event.prompt)},
                      ensure_ascii=False)
    with open(folder / f"{safe}.prompts.jsonl", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def handle(event: payloads.HookEvent, opts: Options, where: Where) -> str | None:
    """Does what the event asks; returns what to print on stdout for the agent (or None)."""
    if event.kind in ("pre", "post", "call"):
        _tool_event(where, event, opts)
    elif event.kind == "prompt":
        _prompt(where, event)
    elif event.kind in ("session", "stop"):
        from tunix_rt.agents import typed

        mid = current(where, opts.milestone)
        if event.kind == "session":
            return typed.session_start(where.root, mid, event)
        if mid is not None and ledger_path(where, mid) is not None:
            typed.refresh_view(where.root, mid)
    return None


def _start(event: payloads.HookEvent) -> Path:
    if event.cwd and os.path.isdir(event.cwd):
        return Path(event.cwd).resolve()
    return Path.cwd().resolve()


def main(argv: list[str], stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Runs one hook event; returns the exit code (0, or 1 for a failure the agent should only show)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    where: Where | None = None
    agent = None
    try:
        opts = parse_options(argv)
        agent = opts.agent
        event = payloads.parse(payloads.loads(stdin.read()), opts.agent)
        agent = event.agent
        where = locate(_start(event))
        answer = handle(event, opts, where)
        if answer is None and agent == "gemini":
            answer = "{}"  # Gemini CLI parses stdout as JSON on exit 0
        if answer is not None:
            stdout.write(answer + "\n")
        return 0
    except (HookFailed, payloads.PayloadError) as exc:
        message = str(exc)
    except Exception as exc:  # a hook never tracebacks into the agent's session
        message = f"{type(exc).__name__}: {exc}"
    line = f"milestone log hook ({agent or 'agent'}): {message}"
    note(where, line)
    sys.stderr.write(line + "\n")
    return 1
