"""Turns an agent's tool call into what its ledger entry holds: title, files, sections, status line, all redacted.

Stdlib only (plus `redact.redact`), because the hook fast path builds these for every tool call. The
same draft serves the first event of a call (pre, or a post whose pre never came) and the amendment
a post event makes to an entry already open.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import Any, NamedTuple

from tunix_rt import redact
from tunix_rt.agents.payloads import HookEvent, ToolCall

TITLE_WIDTH = 72
OUTPUT_LINES = 40
OUTPUT_BYTES = 4096
INPUT_CHARS = 16_000  # a tool input past this (a whole file given to Write) is kept cut, with a marker
_SCAN_TAIL = 64 * 1024  # output is cut to this before redaction, so a huge log costs little

# The line of a failure that says what failed: named error, failure, exception, traceback ...
_ERROR_WORDS = re.compile(r"error|fail|exception|traceback|fatal|denied|not found|cannot|refused", re.I)
# ... but not the preamble agents put first ("Exit code 1", "Command failed with exit code 2").
_PREAMBLE = re.compile(
    r"^(?:error:\s*)?(?:command (?:failed|exited) with )?exit(?:ed)?(?: with)? code:? ?-?\d+\.?$", re.IGNORECASE
)
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


class Draft(NamedTuple):
    """An entry's content from one hook event; `sections` are (name, text) pairs in render order."""

    title: str
    tool: str
    purpose: str
    files: list[str]
    status: str
    status_text: str
    sections: list[tuple[str, str]]


def clean(text: str) -> str:
    """What the CLI does to every value: newlines normalised, stripped, secrets redacted."""
    value, _ = redact.redact(text.replace("\r\n", "\n").strip())
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, width: int) -> str:
    text = _one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def fenced(text: str, info: str = "") -> str:
    """A Markdown code block around `text`, its fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def tail(text: str, lines: int = OUTPUT_LINES, limit: int = OUTPUT_BYTES) -> str:
    """The last `lines` lines of `text`, at most `limit` bytes of them, redacted; a cut is marked."""
    text = text.replace("\r\n", "\n")
    cut = False
    if len(text) > _SCAN_TAIL:
        text = text[-_SCAN_TAIL:].split("\n", 1)[-1]  # drop the partial first line (a token cut in half)
        cut = True
    text = clean(text)
    kept = text.split("\n")
    if len(kept) > lines:
        kept, cut = kept[-lines:], True
    body = "\n".join(kept)
    while len(body.encode("utf-8")) > limit and "\n" in body:
        body, cut = body.split("\n", 1)[1], True
    if len(body.encode("utf-8")) > limit:
        body, cut = body.encode("utf-8")[-limit:].decode("utf-8", "ignore"), True
    return f"[… earlier output cut]\n{body}" if cut else body


def error_line(error: str) -> str:
    """The line that says what failed: the first naming an error or failure that is not an exit-code preamble."""
    lines = [line.strip() for line in clean(error).splitlines() if line.strip()]
    for line in lines:
        if _ERROR_WORDS.search(line) and not _PREAMBLE.match(line):
            return _shorten(line, 200)
    meaningful = [line for line in lines if not _PREAMBLE.match(line)]
    return _shorten((meaningful or lines or ["tool call failed"])[-1], 200)


def relative(path: str, root: str) -> str:
    """A path the agent gave, stored relative to the repository with '/' when it lies inside it."""
    path = path.replace("\\", "/")
    if os.path.isabs(path):
        try:
            rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
        except ValueError:  # another drive on Windows
            return path
        return path if rel.startswith("..") else rel.replace(os.sep, "/")
    return path[2:] if path.startswith("./") else path


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, posix=True)
    except ValueError:
        return command.split()


def is_milestone_call(command: str | None) -> bool:
    """A `milestone ...` command (after `cd X &&` and VAR=value prefixes): the tool records itself."""
    if not command:
        return False
    for segment in re.split(r"&&|;|\|\|", command):
        words = _words(segment.strip())
        while words and _ENV_ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words or words[0] == "cd":
            continue
        program = words[0].replace("\\", "/").rsplit("/", 1)[-1]
        if program in ("milestone", "milestone.exe"):
            return True
        return program.startswith("python") and words[1:3] == ["-m", "tunix_rt.cli"]
    return False


def _input_text(call: ToolCall) -> str:
    """The full tool input: the command itself for a shell, otherwise its JSON, long values cut."""
    if call.command is not None:
        text = call.command
    else:
        shown: dict[str, Any] = {}
        for key, value in call.tool_input.items():
            if isinstance(value, str) and len(value) > 2000:
                value = f"{value[:2000]}… ({len(value) - 2000} more characters)"
            shown[key] = value
        text = json.dumps(shown, ensure_ascii=False, indent=1, default=str)
    if len(text) > INPUT_CHARS:
        text = f"{text[:INPUT_CHARS]}\n… ({len(text) - INPUT_CHARS} more characters not kept)"
    return clean(text)


def _subject(call: ToolCall, files: list[str]) -> str | None:
    if call.tool == "apply_patch" and files:
        return ", ".join(files)
    if call.command:
        return call.command
    if files:
        return files[0]
    data = call.tool_input
    for key in ("pattern", "url", "query", "description", "prompt"):
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key]
    return None


def _result_sections(call: ToolCall) -> list[tuple[str, str]]:
    sections = []
    if call.output and call.output.strip() and call.tool not in ("Read", "read_file", "read_many_files"):
        sections.append(("Output", fenced(tail(call.output))))
    if call.failed and call.error and call.error.strip():
        sections.append(("Error", fenced(tail(call.error))))
    return sections


def result_status(call: ToolCall) -> tuple[str, str]:
    """(status, status_text) of a finished call: the real error line for a failure."""
    if call.interrupted:
        return "failed", "INTERRUPTED — " + (error_line(call.error) if call.error else "the user stopped the call")
    if call.failed:
        return "failed", "FAILED — " + (error_line(call.error) if call.error else "tool call failed")
    return "completed", ""


def opening(event: HookEvent, root: str) -> Draft:
    """The whole entry for the first event of a call (pre; or post/call with no pre before it)."""
    call = event.call
    assert call is not None
    files = [relative(p, root) for p in call.paths]
    subject = _subject(call, files)
    title = _shorten(clean(f"{call.tool}: {subject}" if subject else call.tool), TITLE_WIDTH)
    purpose = clean(_shorten(call.description, 500)) if call.description else f"{call.tool} call by {event.agent}"
    sections = [("Command" if call.command is not None else "Input", fenced(_input_text(call)))]
    if call.subagent:
        sections.append(("Subagent", clean(call.subagent)))
    if event.kind == "pre":
        return Draft(title, clean(call.tool), purpose, files, "in-progress", "", sections)
    status, status_text = result_status(call)
    return Draft(title, clean(call.tool), purpose, files, status, status_text, sections + _result_sections(call))


def closing(call: ToolCall) -> tuple[str, str, list[tuple[str, str]]]:
    """(status, status_text, sections) that a post event adds to the entry its pre event opened."""
    status, status_text = result_status(call)
    return status, status_text, _result_sections(call)
