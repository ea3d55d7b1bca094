"""Whole-file advisory locks on an open ledger, the same on Linux, macOS and Windows (through portalocker).

Kept apart from `ledger.py` so that the agent-hook fast path, which must not import pydantic, takes the
very same lock as every other writer: two writers, one lock, whichever module they come from.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, Union

import portalocker

log = logging.getLogger("tunix_rt")

_WAIT_NOTICE_S = 1.0


def shared(handle: Union[IO[bytes], int]) -> None:
    """Blocks until no writer holds the file (readers wait out an append in progress)."""
    portalocker.lock(handle, portalocker.LockFlags.SHARED)


def exclusive(handle: Union[IO[bytes], int], name: str) -> None:
    """Blocks until the lock is ours; says so once if that takes a while (a close running the tests)."""
    try:
        portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        return
    except portalocker.LockException:
        pass
    notice = threading.Timer(_WAIT_NOTICE_S, log.warning, ("waiting for %s: another milestone command is writing it", name))
    notice.daemon = True
    notice.start()
    try:
        portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE)
    finally:
        notice.cancel()
