"""The append-only JSONL ledger: locked appends, validated reads, and the fold into milestone state.

Durability model: every event is one line written by a single `write()` on an O_APPEND descriptor
while holding an exclusive lock (`tunix_rt.locking`), so concurrent writers (threads or processes) never interleave
and entry numbers are allocated without gaps or duplicates. A process killed mid-write can leave
at most one torn last line (no final newline); readers ignore it with a warning and the next
writer removes it before appending. A last line that lacks only its newline is a complete event:
readers read it and the next writer completes it. A malformed *complete* line, a repeated event id
or an event of a newer schema is never touched: every reader refuses the file with exit 2, naming
the line, until a person repairs it, and so does every writer: nothing is appended to a ledger that
readers refuse. Writers check the whole file only when it changed since the last append by one of
them (a stamp of inode, size and mtime in `.git/tunix-rt/ledgers/`), so an append stays O(1).

Hash chain: every event carries `prev`, the sha256 of the line before it (`GENESIS` for the first
line), so a reader names the first line after one that was edited, removed or moved. A ledger written
before the chain existed is chained from its next event on; once chained, a line without a link is
refused like a broken one. The link of the last line is the ledger's head (`head()`), which the
closing commit carries as `Milestone-Ledger-Head:` so that the end of the file is covered too.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from tunix_rt import locking
from tunix_rt.errors import TunixError
from tunix_rt.models import (
    AcceptedThreshold,
    Block,
    BlockAdded,
    CheckpointAdded,
    Entry,
    EntryAdded,
    EntryUpdated,
    Event,
    Milestone,
    MilestoneClosed,
    MilestoneStarted,
    RunRecorded,
    Section,
    SessionStarted,
    ThresholdAccepted,
    TimelineItem,
)

log = logging.getLogger("tunix_rt")

_TAIL_CHUNK = 64 * 1024
_event_adapter: TypeAdapter[Event] | None = None


def _adapter() -> TypeAdapter[Event]:
    global _event_adapter
    if _event_adapter is None:
        _event_adapter = TypeAdapter(Event)
    return _event_adapter


GENESIS = "0" * 64  # the link of the first line of a ledger


def link(line: bytes) -> str:
    """The chain link to a line: sha256 of its bytes without the newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def head(data: bytes) -> str:
    """The link the next event of a ledger holding `data` carries (GENESIS when it is empty)."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    return link(lines[-1]) if lines else GENESIS


def encode(event: Event, prev: str | None = None) -> bytes:
    """One ledger line: compact JSON, UTF-8, newline-terminated. Gives the event its id on first use,
    so encoding the same event again (to predict a commit's bytes, then to append) gives the same line;
    `prev` is its chain link (the link of the line it will follow)."""
    if event.id is None:
        event.id = secrets.token_hex(8)
    if prev is not None:
        event.prev = prev
    return event.model_dump_json().encode("utf-8") + b"\n"


def encode_chained(events: list[Event], prev: str) -> bytes:
    """Lines for `events` appended after a line whose link is `prev`, each linked to the one before."""
    lines = []
    for event in events:
        line = encode(event, prev)
        prev = link(line)
        lines.append(line)
    return b"".join(lines)


# --- reading --------------------------------------------------------------------------------


def _complete_event(line: bytes) -> bool:
    """Whether a last line without its newline is nevertheless a whole event (only the newline was lost)."""
    try:
        _adapter().validate_json(line)
    except ValidationError:
        return False
    return True


def _split(path: Path, data: bytes) -> list[tuple[int, bytes]]:
    """Complete lines with their 1-based numbers; a torn last line is reported and left out."""
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    if torn.strip():
        if _complete_event(torn):
            lines.append(torn)
        else:
            log.warning(
                "%s: line %d is incomplete (a writer was interrupted); ignoring it: %r",
                path,
                len(lines) + 1,
                torn[:80].decode("utf-8", "replace"),
            )
    return [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def parse_line(path: Path, number: int, line: bytes) -> Event:
    try:
        return _adapter().validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        detail = f"{first['msg']}" + (f" at {where}" if where else "")
        raise TunixError(f"{path}:{number}: malformed ledger line ({detail}); repair or remove it by hand") from exc


def parse(path: Path, data: bytes, *, whole: bool = True) -> list[Event]:
    """Every event, validated; a repeated event id (a duplicated line) or a broken hash chain refuses the
    file like a malformed line. `whole=False` reads a tail of the file (its first line's link unchecked)."""
    events: list[Event] = []
    seen: dict[str, int] = {}
    previous: tuple[int, bytes] | None = None
    chained = False
    for number, line in _split(path, data):
        event = parse_line(path, number, line)
        if event.id is not None:
            if event.id in seen:
                raise TunixError(
                    f"{path}:{number}: repeats the event of line {seen[event.id]} (id {event.id}); "
                    "remove the duplicate by hand"
                )
            seen[event.id] = number
        if whole or previous is not None:
            _check_link(path, number, event, previous, chained)
        chained = chained or event.prev is not None
        previous = (number, line)
        events.append(event)
    return events


def read(path: Path) -> list[Event]:
    """Every complete event, validated; refuses the whole file if any complete line is malformed."""
    try:
        with open(path, "rb") as handle:
            locking.shared(handle)  # waits out a writer mid-append
            data = handle.read()
    except OSError as exc:
        raise TunixError(f"cannot read ledger {path}: {exc.strerror}") from exc
    return parse(path, data)


def _check_link(path: Path, number: int, event: Event, previous: tuple[int, bytes] | None, chained: bool) -> None:
    if event.prev is None:
        if chained:
            raise TunixError(f"{path}:{number}: the hash chain breaks here: the line has no link although the lines "
                             "before it are chained (written by hand?); restore the ledger from git")
        return
    expected = GENESIS if previous is None else link(previous[1])
    if event.prev != expected:
        after = "the start of the file" if previous is None else f"line {previous[0]}"
        raise TunixError(f"{path}:{number}: the hash chain breaks here: this line does not follow {after} (a line "
                         "was edited, removed or moved); restore the ledger from git")


# --- writing ------------------------------------------------------------------------------


@dataclass
class Tail:
    """What an appender needs to know, read from the end of the file only."""

    last_number: int  # highest entry number seen in the tail window (0 when none)
    closed: bool  # the last event closes the milestone


class Writer:
    """An exclusive hold on one ledger; created by `writer()`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self._drop_torn_tail()
        self._refuse_unreadable()
        self.size_before = self.size

    def _refuse_unreadable(self) -> None:
        """A ledger readers refuse takes no append: checked in full unless the stamp left by the last
        writer proves nobody else touched the file since."""
        if _stamp(self.fd) == _read_stamp(self.path):
            return
        fold(self.path, self.events())
        _write_stamp(self.path, self.fd)

    def _read_at(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def _drop_torn_tail(self) -> None:
        if self.size == 0:
            return
        start = max(0, self.size - _TAIL_CHUNK)
        chunk = self._read_at(start, self.size - start)
        if chunk.endswith(b"\n"):
            return
        cut = chunk.rfind(b"\n")
        while cut < 0 and start > 0:  # a torn line longer than one chunk
            start = max(0, start - _TAIL_CHUNK)
            chunk = self._read_at(start, self.size - start)
            cut = chunk.rfind(b"\n")
        keep = start + cut + 1 if cut >= 0 else 0
        if _complete_event(chunk[cut + 1 :]):  # only the newline was lost: the event stands
            os.write(self.fd, b"\n")
            self.size += 1
            return
        log.warning(
            "%s: removing an incomplete last line left by an interrupted writer (%d bytes)",
            self.path,
            self.size - keep,
        )
        os.ftruncate(self.fd, keep)
        self.size = keep

    def read_from(self, offset: int) -> bytes:
        """The file from `offset` to its end, as this hold sees it (parsed later, outside the lock)."""
        return self._read_at(offset, self.size - offset)

    def events(self) -> list[Event]:
        """Every event, read through the held descriptor (a second lock would deadlock)."""
        return parse(self.path, self._read_at(0, self.size))

    def lines_backwards(self) -> Iterator[bytes]:
        """Complete lines from the last to the first, read chunk by chunk (appends stay O(1))."""
        end = self.size
        carry = b""
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            lines = (self._read_at(start, end - start) + carry).split(b"\n")
            carry = lines.pop(0) if start > 0 else b""  # possibly partial: completed by the next chunk
            for line in reversed(lines):
                if line.strip():
                    yield line
            end = start

    def tail(self) -> Tail:
        """The last entry number and whether the milestone is closed, from the end of the file only."""
        closed: bool | None = None
        for line in self.lines_backwards():
            if closed is None:
                closed = b'"kind":"milestone_closed"' in line
            if b'"kind":"entry_added"' in line:
                return Tail(last_number=json.loads(line)["entry"]["number"], closed=closed)
        return Tail(last_number=0, closed=bool(closed))

    def last_block_entry(self, number: int | None) -> Entry | None:
        """Entry `number` (None: the latest) folded from the end of the file, if it is the view's last block.

        Returns None whenever the answer needs the whole history: a session, checkpoint, block or
        other entry after it, a closed milestone, or no such entry in the file.
        """
        updates: list[EntryUpdated] = []
        try:
            return self._last_block_entry(number, updates)
        except TunixError:
            return None  # a damaged line: the full path reads the file and names it

    def _last_block_entry(self, number: int | None, updates: list[EntryUpdated]) -> Entry | None:
        for line in self.lines_backwards():
            if b'"kind":"entry_added"' in line:
                event = parse_line(self.path, 0, line)
                assert isinstance(event, EntryAdded)
                if number is not None and event.entry.number != number:
                    return None  # another entry comes after it
                entry = event.entry.model_copy(deep=True)
                for update in reversed(updates):
                    apply_update(entry, update)
                return entry
            if b'"kind":"entry_updated"' in line:
                event = parse_line(self.path, 0, line)
                assert isinstance(event, EntryUpdated)
                if number is None or event.number == number:
                    updates.append(event)
                    number = event.number if number is None else number
                continue
            if b'"kind":"run_recorded"' in line:
                continue  # runs are not part of the view
            return None  # a session, checkpoint, block or the close: not the last block / not open
        return None

    def append(self, *events: Event) -> None:
        """All events in one write, so a crash leaves either all of them or a torn last line."""
        tail = list(itertools.islice(self.lines_backwards(), 8))  # one read of the end: the link and recent ids
        data = encode_chained(list(events), link(tail[0]) if tail else GENESIS)
        ids = [event.id for event in events]
        tail_ids = {json.loads(line).get("id") for line in tail}
        if len(set(ids)) != len(ids) or tail_ids.intersection(ids):
            raise TunixError(f"{self.path}: refused to append an event twice (id {ids[0]})")
        written = 0
        try:
            while written < len(data):  # a short write happens only on a full disk or a signal
                written += os.write(self.fd, data[written:])
        except OSError:
            os.ftruncate(self.fd, self.size)  # no partial event, and no half of a multi-event append
            raise
        self.size += len(data)
        _write_stamp(self.path, self.fd)

    def truncate(self, size: int) -> None:
        """Takes back this writer's own appends (used by `close` to stay all-or-nothing)."""
        if size < self.size_before:
            raise ValueError("a writer may only take back what it appended")
        os.ftruncate(self.fd, size)
        self.size = size


def _stamp_file(path: Path) -> Path | None:
    """Where writers leave the stamp of a ledger: the clone's `.git/tunix-rt/ledgers/` (None outside a repo)."""
    from tunix_rt.project import find_git_dir

    found = find_git_dir(path.parent)
    return None if found is None else found / "tunix-rt" / "ledgers" / f"{path.name}.stamp"


def _stamp(fd: int) -> str:
    st = os.fstat(fd)
    return f"{st.st_ino} {st.st_size} {st.st_mtime_ns}"


def _read_stamp(path: Path) -> str | None:
    where = _stamp_file(path)
    try:
        return where.read_text(encoding="ascii") if where is not None else None
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, fd: int) -> None:
    where = _stamp_file(path)
    if where is None:
        return
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = where.with_name(f".{where.name}.{os.getpid()}.tmp")
        tmp.write_text(_stamp(fd), encoding="ascii")
        os.replace(tmp, where)
    except OSError:
        pass  # a read-only .git: the next writer checks the whole file instead



def _lock_exclusive(fd: int, path: Path) -> None:
    """Blocks until the lock is ours (portalocker: flock on POSIX, LockFileEx on Windows)."""
    locking.exclusive(fd, path.name)


def create(path: Path, events: list[Event]) -> int:
    """A new ledger holding `events`, or none at all: written aside, then linked into place.

    `link` fails when the name exists, so of two racing creators exactly one wins, and a process
    killed at any moment leaves either no ledger or a complete one (never an empty file that would
    make the id unusable).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = encode_chained(events, GENESIS)
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.link(tmp, path)
    except FileExistsError as exc:
        raise TunixError(f"{path} already exists") from exc
    except OSError as exc:
        raise TunixError(f"cannot create ledger {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


@contextmanager
def writer(path: Path) -> Iterator[Writer]:
    flags = os.O_RDWR | os.O_APPEND
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise TunixError(f"cannot open ledger {path} for writing: {exc.strerror}") from exc
    try:
        _lock_exclusive(fd, path)
        yield Writer(path, fd)
    except OSError as exc:
        raise TunixError(f"cannot write ledger {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


# --- folding ------------------------------------------------------------------------------


def _merge_sections(target: list[Section], added: list[Section]) -> None:
    by_name = {section.name: section for section in target}
    for section in added:
        if section.name in by_name:
            existing = by_name[section.name]
            existing.items.extend(section.items)
            if section.text:
                existing.text = f"{existing.text}\n\n{section.text}" if existing.text else section.text
        else:
            copy = section.model_copy(deep=True)
            target.append(copy)
            by_name[copy.name] = copy


def apply_update(entry: Entry, event: EntryUpdated) -> None:
    """One amendment, applied in place (the fold and the fast update path share it)."""
    if event.status is not None:
        entry.status = event.status
        entry.status_text = event.status_text or ""
    elif event.status_text is not None:
        entry.status_text = event.status_text
    _merge_sections(entry.sections, event.sections)
    if event.checkpoint is not None:
        entry.checkpoint = event.checkpoint


def fold(path: Path, events: list[Event]) -> Milestone:
    """Replays the events into the milestone state (the only place state is derived)."""
    if not events or not isinstance(events[0], MilestoneStarted):
        raise TunixError(f"{path}: a ledger must begin with a milestone_started event")
    first = events[0]
    state = Milestone(
        id=first.milestone,
        title=first.title,
        phase=first.phase,
        status="open",
        baseline=first.baseline,
        source=first.source,
        imported_from=first.imported_from,
        started=first.time,
    )
    entry_index: dict[int, int] = {}
    amended: set[int] = set()  # entries copied before their first amendment (the events are never changed)
    run_index: dict[str, int] = {}
    for event in events[1:]:
        if isinstance(event, EntryAdded):
            if event.entry.number in entry_index:
                raise TunixError(f"{path}: entry {event.entry.number} is added twice; remove the duplicate by hand")
            entry_index[event.entry.number] = len(state.entries)
            state.timeline.append(TimelineItem(type="entry", index=len(state.entries)))
            state.entries.append(event.entry)  # copied only when amended: a deep copy each is most of a fold
        elif isinstance(event, EntryUpdated):
            if event.number not in entry_index:
                raise TunixError(f"{path}: entry_updated refers to entry {event.number}, which does not exist")
            index = entry_index[event.number]
            if index not in amended:
                state.entries[index] = state.entries[index].model_copy(deep=True)
                amended.add(index)
            apply_update(state.entries[index], event)
        elif isinstance(event, SessionStarted):
            state.timeline.append(TimelineItem(type="session", index=len(state.sessions)))
            state.sessions.append(event.session)
        elif isinstance(event, CheckpointAdded):
            state.timeline.append(TimelineItem(type="checkpoint", index=len(state.checkpoints)))
            state.checkpoints.append(event.checkpoint)
        elif isinstance(event, BlockAdded):
            state.timeline.append(TimelineItem(type="block", index=len(state.blocks)))
            state.blocks.append(event.block)
        elif isinstance(event, RunRecorded):
            if event.run.id in run_index:
                state.runs[run_index[event.run.id]] = event.run
            else:
                run_index[event.run.id] = len(state.runs)
                state.runs.append(event.run)
        elif isinstance(event, ThresholdAccepted):
            _accept(state, event)
        elif isinstance(event, MilestoneClosed):
            if state.status == "closed":
                raise TunixError(f"{path}: the milestone is closed twice; remove the duplicate by hand")
            state.status = "closed"
            state.closed = event.closed
        elif isinstance(event, MilestoneStarted):
            raise TunixError(f"{path}: a second milestone_started event")
    return state


def _accept(state: Milestone, event: ThresholdAccepted) -> None:
    """A threshold on a key that already has one replaces it; the change stays visible."""
    new = AcceptedThreshold(threshold=event.threshold, time=event.time, runs_before=event.runs_before)
    for i, held in enumerate(state.thresholds):
        if held.threshold.key == event.threshold.key:
            new.replaced = held.threshold
            state.thresholds[i] = new
            return
    state.thresholds.append(new)


def load(path: Path) -> Milestone:
    return fold(path, read(path))


__all__ = [
    "GENESIS", "Block", "Tail", "Writer", "encode", "encode_chained", "fold", "head", "link", "load", "parse_line",
    "read", "writer",
]
