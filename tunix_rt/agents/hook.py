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
import re
import sys
from typing import IO, NamedTuple

from tunix_rt.agents import drafts, fastlog, payloads

USAGE = "usage: milestone log hook [--agent claude-code|codex|gemini|cursor] [--milestone M44] < payload.json"


class HookFailed(Exception):
    """The hook could not do its work; the message is the one line the user sees."""


class Options(NamedTuple):
    agent: str | None = None
    milestone: str | None = None


class Where(NamedTuple):
    """The project a hook event belongs to, found without importing the typed stack."""

    root: str
    state_dir: str
    milestones_dir: str


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


def locate(start: str) -> Where:
    """The repository holding `start`, its per-clone state folder and its milestones folder.

    Plain `os.path` strings: pathlib would add 7 ms to every hook event.
    """
    folder = start
    while True:
        dot_git = os.path.join(folder, ".git")
        git_dir = None
        if os.path.isdir(dot_git):
            git_dir = dot_git
        elif os.path.isfile(dot_git):
            with open(dot_git, encoding="utf-8") as handle:
                text = handle.read().strip()
            if text.startswith("gitdir:"):
                git_dir = os.path.realpath(os.path.join(folder, text.split(":", 1)[1].strip()))
        if git_dir is not None:
            return Where(folder, os.path.join(git_dir, "tunix-rt"), os.path.join(folder, _milestones_setting(folder)))
        parent = os.path.dirname(folder)
        if parent == folder:
            raise HookFailed(f"{start} is not inside a git repository")
        folder = parent


_SIMPLE_SETTING = re.compile(r'^milestones_dir[ \t]*=[ \t]*"([^"\\]*)"[ \t]*(?:#.*)?$', re.M)


def _milestones_setting(root: str) -> str:
    """`milestones_dir` from the settings file; tomllib (17 ms) only when a plain `key = "value"` line
    in the tool's own table cannot say it."""
    for name, header in (("pyproject.toml", "[tool.tunix-rt]"), ("milestone.toml", None)):
        try:
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise HookFailed(f"{os.path.join(root, name)}: {exc.strerror}") from exc
        if header is not None and "tunix-rt" not in text:
            continue
        if "milestones_dir" not in text:
            return "ProjectFiles/Milestones"
        table = text
        if header is not None and header in text:
            table = text.split(header, 1)[1]
            table = re.split(r"^\s*\[", table, maxsplit=1, flags=re.M)[0]
        simple = _SIMPLE_SETTING.findall(table)
        if len(simple) == 1 and table.count("milestones_dir") == 1 and text.count("milestones_dir") == 1:
            return simple[0]
        import tomllib

        try:
            data = tomllib.loads(text)
        except ValueError as exc:
            raise HookFailed(f"{os.path.join(root, name)}: {exc}") from exc
        for key in ("tool", "tunix-rt") if header else ():
            data = data.get(key, {}) if isinstance(data, dict) else {}
        value = data.get("milestones_dir") if isinstance(data, dict) else None
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
        with open(os.path.join(where.state_dir, "state.json"), encoding="utf-8") as handle:
            value = json.load(handle).get("current")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def ledger_path(where: Where, milestone: str) -> str | None:
    try:
        phases = sorted(name for name in os.listdir(where.milestones_dir) if name.startswith("Phase"))
    except OSError:
        return None
    for phase in phases:
        candidate = os.path.join(where.milestones_dir, phase, f"{milestone}.ledger.jsonl")
        if os.path.isfile(candidate):
            resolved, root = os.path.realpath(candidate), os.path.realpath(where.root)
            if not resolved.startswith(root + os.sep):
                raise HookFailed(f"{candidate} points outside the repository ({resolved})")
            return candidate
    return None


def note(where: Where | None, message: str) -> None:
    """One line in `.git/tunix-rt/hooks.log`: the hook's own trail of what it did not record, and why."""
    if where is None:
        return
    try:
        os.makedirs(where.state_dir, exist_ok=True)
        with open(os.path.join(where.state_dir, "hooks.log"), "a", encoding="utf-8") as handle:
            handle.write(f"{fastlog.stamp()} {message}\n")
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
    opening = drafts.opening(event, where.root)
    closing = drafts.closing(call) if event.kind == "post" else None
    for attempt in (1, 2):
        try:
            stamp_file = os.path.join(where.state_dir, "ledgers", os.path.basename(path) + ".stamp")
            fastlog.record(path, event.kind, call.key, call.keyed_by_id, event.session_id, opening, closing,
                           stamp_file=stamp_file)
            return
        except fastlog.Unusual as exc:
            if "closed" in str(exc):
                note(where, f"not recorded ({event.agent} {event.name} {call.tool}): milestone {mid} is closed")
                return
            if attempt == 2:
                raise HookFailed(f"{os.path.basename(path)}: {exc}") from None
            from tunix_rt.agents import typed

            typed.repair(path)  # the typed writer drops a torn last line; then try once more


def _prompt(where: Where, event: payloads.HookEvent) -> None:
    """A prompt is session context, kept per clone (never committed), redacted like everything else."""
    if not event.prompt:
        return
    folder = os.path.join(where.state_dir, "agents")
    os.makedirs(folder, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in event.session_id)[:80] or "session"
    line = json.dumps({"time": fastlog.stamp(), "agent": event.agent, "prompt": drafts.clean(event.prompt)},
                      ensure_ascii=False)
    with open(os.path.join(folder, f"{safe}.prompts.jsonl"), "a", encoding="utf-8") as handle:
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


def _start(event: payloads.HookEvent) -> str:
    if event.cwd and os.path.isdir(event.cwd):
        return os.path.realpath(event.cwd)
    return os.path.realpath(os.getcwd())


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
    if where is None:  # the payload was bad: the log still goes to the repository the hook ran in
        try:
            where = locate(os.path.realpath(os.getcwd()))
        except Exception:  # noqa: BLE001 - no repository: stderr is all there is
            where = None
    note(where, line)
    sys.stderr.write(line + "\n")
    return 1
