"""Appends a tool call's ledger event without pydantic, typer or Jinja: the hook path every tool call takes.

It writes exactly the line `ledger.encode()` would write for the same `EntryAdded` / `EntryUpdated`
(tests/test_agent_fastlog.py holds the two side by side), under the same lock as every other writer,
and leaves the Markdown view alone: the view's size cache sees the ledger grew and the next writer,
`milestone render`, `close` or the agent's Stop event renders it in full, byte for byte.

Anything unusual (a torn last line, a closed milestone) is not handled here: `Unusual` sends the
caller to the typed path, which knows how to repair or refuse.
"""

from __future__ import annotations

import json
import mmap
import os
import time
from typing import Any, Literal, NamedTuple

from tunix_rt import locking
from tunix_rt.agents.drafts import Draft

try:  # the bare sha256 module: hashlib's OpenSSL import would cost a hook 5 ms
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]
except ImportError:  # Python 3.12 renamed it
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment]

_ADDED = b'"kind":"entry_added"'
_UPDATED = b'"kind":"entry_updated"'
_CLOSED = b'"kind":"milestone_closed"'


class Unusual(Exception):
    """The ledger needs the typed path: a torn last line to repair, a closed milestone, a damaged line."""


class Found(NamedTuple):
    number: int
    closed: bool  # a post event already finished this call


Outcome = Literal["opened", "closed", "recorded", "duplicate"]


def _line_at(data: mmap.mmap | bytes, position: int) -> tuple[bytes, int]:
    start = data.rfind(b"\n", 0, position) + 1
    end = data.find(b"\n", position)
    return data[start:end], end + 1


def _last_number(data: mmap.mmap | bytes) -> int:
    at = data.rfind(_ADDED)
    if at < 0:
        return 0
    line, _ = _line_at(data, at)
    try:
        return int(json.loads(line)["entry"]["number"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unusual("the last entry line is damaged") from exc


def find(data: mmap.mmap | bytes, key: str) -> Found | None:
    """The newest entry opened for call `key`, and whether a later event already finished it."""
    at = data.rfind(b'"tool_use_id":' + json.dumps(key).encode("utf-8"))
    if at < 0:
        return None
    line, end = _line_at(data, at)
    try:
        entry = json.loads(line)["entry"]
    except (ValueError, KeyError) as exc:
        raise Unusual("an entry line is damaged") from exc
    number = int(entry["number"])
    if entry.get("status") in ("completed", "failed"):
        return Found(number, True)
    needle = b'"number":%d,' % number
    for later in data[end:].split(b"\n"):
        if _UPDATED in later and needle in later and json.loads(later).get("status") in ("completed", "failed"):
            return Found(number, True)
    return Found(number, False)


def _entry(number: int, now: str, draft: Draft, session: str, key: str) -> dict[str, Any]:
    """The `Entry` model's fields, in its order (what pydantic's model_dump_json writes)."""
    return {
        "number": number, "label": str(number), "title": draft.title, "timestamp": now, "tools": [draft.tool],
        "purpose": draft.purpose, "files": draft.files, "status": draft.status, "status_text": draft.status_text,
        "sections": _sections(draft.sections), "checkpoint": None, "notes": [], "source": "hook",
        "agent_session_id": session, "tool_use_id": key,
    }


def _sections(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": name, "items": [text], "text": "", "ordered": False} for name, text in pairs if text]


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _event_id() -> str:
    """What `ledger.encode` gives a new event (`secrets.token_hex(8)`), without importing `secrets`."""
    return os.urandom(8).hex()


GENESIS = "0" * 64  # `ledger.GENESIS`


def link(line: bytes) -> str:
    """`ledger.link`: the sha256 of a line without its newline (the next line's `prev`)."""
    return _sha256(line.rstrip(b"\n")).hexdigest()


def added_line(number: int, now: str, draft: Draft, session: str, key: str, prev: str) -> bytes:
    return encode({"schema_version": 1, "time": now, "id": _event_id(), "prev": prev, "kind": "entry_added",
                   "entry": _entry(number, now, draft, session, key)})


def updated_line(number: int, now: str, status: str, status_text: str, sections: list[tuple[str, str]],
                 prev: str) -> bytes:
    return encode({"schema_version": 1, "time": now, "id": _event_id(), "prev": prev, "kind": "entry_updated",
                   "number": number,
                   "status": status,
                   "status_text": status_text, "sections": _sections(sections), "checkpoint": None, "source": "hook"})


def stamp() -> str:
    """`clock.stamp()` without importing datetime (7 ms of a hook's budget) unless the time is pinned."""
    if os.environ.get("TUNIX_RT_NOW"):
        from tunix_rt import clock

        return clock.stamp()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _file_stamp(fd: int) -> str:
    """The ledger writer's stamp (`ledger._stamp`): inode, size and mtime of the file as last validated."""
    st = os.fstat(fd)
    return f"{st.st_ino} {st.st_size} {st.st_mtime_ns}"


def _append(fd: int, data: bytes, size: int, stamp_file: str | None = None) -> None:
    """Appends one event; when the writers' stamp proved the file valid before, it is moved past the new line
    (the line is valid by construction), so the next typed writer need not re-validate the whole ledger."""
    trusted = False
    if stamp_file is not None:
        try:
            with open(stamp_file, encoding="ascii") as handle:
                trusted = handle.read() == _file_stamp(fd)
        except (OSError, ValueError):
            trusted = False
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError:
        os.ftruncate(fd, size)  # never half an event
        raise
    if trusted and stamp_file is not None:
        try:
            tmp = f"{stamp_file}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="ascii") as handle:
                handle.write(_file_stamp(fd))
            os.replace(tmp, stamp_file)
        except OSError:
            pass  # the next typed writer validates in full instead


def record(
    path: str,
    kind: str,
    key: str,
    keyed_by_id: bool,
    session: str,
    opening: Draft,
    closing: tuple[str, str, list[tuple[str, str]]] | None,
    *,
    stamp_file: str | None = None,
) -> Outcome:
    """One event of a tool call, folded into its entry: open it, finish it, or record it whole.

    `opening` is the entry as the first event of the call writes it; `closing` is what a post event
    adds to an entry its pre event opened (None for a pre event). Duplicate deliveries change nothing.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0))
    try:
        locking.exclusive_fast(fd, os.path.basename(path))
        size = os.fstat(fd).st_size
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) if size else _Empty() as data:
            if size and data[size - 1:size] != b"\n":
                raise Unusual("the ledger ends in a torn line")
            last_line, _ = _line_at(data, data.rfind(b"\n", 0, size - 1) + 1) if size else (b"", 0)
            if _CLOSED in last_line:
                raise Unusual("the milestone is closed")
            if size and not last_line.strip():
                raise Unusual("the ledger ends in a blank line")
            prev = link(last_line) if size else GENESIS
            found = find(data, key)
            number = _last_number(data)
        now = stamp()
        if kind == "pre":
            # a call id seen before is a repeat delivery; a derived key may repeat for a new identical call
            if found is not None and (keyed_by_id or not found.closed):
                return "duplicate"
            _append(fd, added_line(number + 1, now, opening, session, key, prev), size, stamp_file)
            return "opened"
        if found is not None and not found.closed and closing is not None:
            _append(fd, updated_line(found.number, now, *closing, prev), size, stamp_file)
            return "closed"
        if found is not None:
            return "duplicate"
        _append(fd, added_line(number + 1, now, opening, session, key, prev), size, stamp_file)
        return "recorded"
    finally:
        os.close(fd)


class _Empty(bytes):
    """An empty ledger stands in for an mmap (mmap refuses length 0)."""

    def __enter__(self) -> bytes:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
