"""Whole-file advisory locks on an open ledger, the same on Linux, macOS and Windows (through portalocker).

Kept apart from `ledger.py` so that the agent-hook fast path, which must not import pydantic, takes the
very same lock as every other writer. portalocker's POSIX lock is `fcntl.flock` itself
(`portalocker.portalocker.LOCKER`, checked by tests/test_agent_fastlog.py); importing portalocker costs
about 100 ms of CPU (its version lookup loads importlib.metadata), three bare Python starts, so the hook
fast path takes that same flock directly on POSIX and goes through portalocker on Windows.
"""

from __future__ import annotations

import os
from typing import IO

_WAIT_NOTICE_S = 1.0

Lockable = IO[bytes] | int


def shared(handle: Lockable) -> None:
    """Blocks until no writer holds the file (readers wait out an append in progress)."""
    import portalocker

    portalocker.lock(handle, portalocker.LockFlags.SHARED)


def exclusive(handle: Lockable, name: str) -> None:
    """Blocks until the lock is ours; says so once if that takes a while (a close running the tests)."""
    import portalocker

    try:
        portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        return
    except portalocker.LockException:
        pass
    import logging
    import threading

    log = logging.getLogger("tunix_rt")
    message = "waiting for %s: another milestone command is writing it"
    notice = threading.Timer(_WAIT_NOTICE_S, log.warning, (message, name))
    notice.daemon = True
    notice.start()
    try:
        portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE)
    finally:
        notice.cancel()


def exclusive_fast(fd: int, name: str) -> None:
    """The same exclusive lock for the hook fast path, without importing portalocker on POSIX."""
    if os.name != "posix":
        exclusive(fd, name)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
