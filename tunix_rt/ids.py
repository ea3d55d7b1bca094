"""Milestone and run identifiers: parsing, canonical form and validation."""

from __future__ import annotations

import re

from tunix_rt.errors import TunixError

_MILESTONE = re.compile(r"[Mm](\d{1,6})")
_RUN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def canonical_milestone(text: str) -> str:
    """`M7`, `m7`, `M07`, `M0007` -> `M07`; anything else is refused.

    The canonical form keeps at least two digits, so `M0001` and `M01` are the same milestone.
    """
    match = _MILESTONE.fullmatch(text.strip())
    if not match:
        raise TunixError(f"invalid milestone id {text!r}: expected M followed by digits, such as M44")
    return f"M{int(match.group(1)):02d}"


def is_milestone_id(text: str) -> bool:
    """Whether `text` names a milestone (`M44`, `m44`) rather than a run (`m44_v1`) or a path."""
    return _MILESTONE.fullmatch(text.strip()) is not None


def milestone_number(milestone_id: str) -> int:
    return int(canonical_milestone(milestone_id)[1:])


def run_prefix(milestone_id: str) -> str:
    """Evidence folders use the lowercase id: `M44` -> `m44`."""
    return canonical_milestone(milestone_id).lower()


def check_run_id(run_id: str) -> str:
    """A run id names one folder directly under `submission_runs/`: no separators, no `..`."""
    if not _RUN.fullmatch(run_id) or ".." in run_id:
        raise TunixError(
            f"invalid run id {run_id!r}: use lowercase letters, digits, '_', '-' or '.', such as m44_v1"
        )
    return run_id
