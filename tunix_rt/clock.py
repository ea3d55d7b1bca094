"""Time, stored in UTC ISO 8601; `TUNIX_RT_NOW` pins it for tests and reproducible demos."""

from __future__ import annotations

import os
from datetime import datetime, timezone


def now() -> datetime:
    pinned = os.environ.get("TUNIX_RT_NOW")
    if pinned:
        return datetime.fromisoformat(pinned.replace("Z", "+00:00")).astimezone(timezone.utc)
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """`2026-11-25T17:30:12Z`: second precision, always UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp() -> str:
    return iso(now())
