"""Reads of files a user names on the command line, bounded: `/dev/zero` or a FIFO must not read forever."""

from __future__ import annotations

from pathlib import Path

from tunix_rt.errors import TunixError


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """At most `limit` bytes of `path`, or a refusal naming the limit; never more than limit + 1 bytes read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise TunixError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(data) > limit:
        raise TunixError(f"{what} {path} is larger than {limit / 1024 / 1024:g} MB; refused")
    return data
