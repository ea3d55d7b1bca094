"""Edits the project's master document at close: the status line and one Enhancements block per milestone.

The master document is written by people, so it is edited surgically, never re-rendered: the
`**Milestone MNN Complete** ✅` line is rewritten in place (keeping whatever follows it on the line,
such as the two spaces of a Markdown hard break), and the `**MNN Enhancements:** ...` block is
replaced when it exists, or inserted before a configured heading (else at the end). Applying the
same update twice gives the same text.
"""

from __future__ import annotations

import re

# `**Milestone M43 Complete** ✅`, or the line `milestone init` writes before any milestone closed.
_STATUS = re.compile(r"^\*\*(?:Milestone (?P<id>M\d+) Complete\*\* ✅|No milestone complete yet\*\*)", re.M)
_H1 = re.compile(r"^# .*$", re.M)


def status_line(milestone_id: str) -> str:
    return f"**Milestone {milestone_id} Complete** ✅"


def _block_pattern(milestone_id: str) -> re.Pattern[str]:
    # The block: its title line and every following non-blank line (the bullets), up to a blank line.
    return re.compile(rf"^\*\*{re.escape(milestone_id)} Enhancements:\*\*.*(?:\n(?!\s*\n).+)*", re.M)


def _number(milestone_id: str) -> int:
    return int(milestone_id[1:])


def update(
    text: str | None, milestone_id: str, block: str, *, heading: str | None = None, title: str = "Project"
) -> str:
    """The master document with `milestone_id` marked complete and its block in place."""
    block = block.strip("\n")
    if not text or not text.strip():
        return f"# {title}\n\n{status_line(milestone_id)}\n\n{block}\n"
    text = text.replace("\r\n", "\n")

    match = _STATUS.search(text)
    if match is None:
        h1 = _H1.search(text)
        if h1 is not None:
            rest = text[h1.end() :].lstrip("\n")
            text = f"{text[: h1.end()]}\n\n{status_line(milestone_id)}\n" + (f"\n{rest}" if rest else "")
        else:
            text = f"{status_line(milestone_id)}\n\n{text}"
    elif match.group("id") is None or _number(match.group("id")) <= _number(milestone_id):
        # Closing an older milestone late must not move the status line backwards.
        text = text[: match.start()] + status_line(milestone_id) + text[match.end() :]

    existing = _block_pattern(milestone_id).search(text)
    if existing is not None:
        text = text[: existing.start()] + block + text[existing.end() :]
    else:
        anchor = None
        if heading:
            anchor = re.search(rf"^{re.escape(heading.strip())}[ \t]*$", text, re.M)
        if anchor is not None:
            before = text[: anchor.start()].rstrip("\n")
            text = f"{before}\n\n{block}\n\n{text[anchor.start():]}"
        else:
            text = text.rstrip("\n") + f"\n\n{block}\n"
    if not text.endswith("\n"):
        text += "\n"
    return text
