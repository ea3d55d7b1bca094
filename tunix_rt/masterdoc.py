"""Edits the project's master document at close: the status line and one Enhancements block per milestone.

The master document is written by people, so it is edited surgically, never re-rendered: the
`**Milestone MNN Complete** ✅` line is rewritten in place (keeping whatever follows it on the line,
such as the two spaces of a Markdown hard break), and the `**MNN Enhancements:** ...` block is
replaced when it exists, or inserted before a configured heading (else at the end). Applying the
same update twice gives the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def update(text: str | None, milestone_id: str, block: str, *, heading: str | None = None, title: str = "Project") -> str:
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


# --- an existing master document's own block format (adoption) -----------------------------------------------

_ANY_BLOCK = re.compile(r"^\*\*(?P<id>M\d+) Enhancements:\*\*[ \t]*(?P<rest>.*)$", re.M)
_BULLET = re.compile(r"^- \*\*[^*\n]+?(?P<colon>:\*\*|\*\*:)", re.M)
_PHASE_TAIL = re.compile(r"\((?P<before>[^()]*?)Phase\s*\d+(?P<after>[^()]*)\)\s*:?\s*$")
_HEADING = re.compile(r"^#{1,6} .*$", re.M)
_STATUS_FIELD = re.compile(r"\| \*\*(?P<id>M\d+):\*\*[^|\n]*$", re.M)


@dataclass(frozen=True)
class BlockFormat:
    """How a master document writes its per-milestone blocks, read from its latest block.

    `bullets`: a title line then `- **Key**: text` bullets (else one paragraph `**Mnn Enhancements:** Title - a, b`);
    `colon_inside`: `- **Key:** text` rather than `- **Key**: text`; `title_tail`: the parenthesis after the title with
    `{phase}` where the phase number was (`(Research, Phase {phase})`); `title_colon`: the title line ends in ':';
    `insert_before`: the heading that follows the latest block (new blocks go before it), None for the end;
    `status_field`: the status line ends in a `| **Mnn:** result` field that each close rewrites.
    """

    bullets: bool = True
    colon_inside: bool = False
    title_tail: str = ""
    title_colon: bool = True
    insert_before: str | None = None
    status_field: bool = False


def detect_format(text: str) -> BlockFormat:
    """The block format of an existing master document; the defaults (this tool's own format) when it has no block."""
    text = text.replace("\r\n", "\n")
    blocks = list(_ANY_BLOCK.finditer(text))
    first_heading = re.search(r"^## ", text, re.M)
    status_field = bool(_STATUS_FIELD.search(text, 0, first_heading.start() if first_heading else len(text)))
    if not blocks:
        return BlockFormat(status_field=status_field)
    last = max(blocks, key=lambda m: _number(m.group("id")))
    body_end = text.find("\n\n", last.end())
    body = text[last.end() : body_end if body_end != -1 else len(text)]
    bullet = _BULLET.search(body)
    rest = last.group("rest").rstrip()
    tail = _PHASE_TAIL.search(rest)
    following = _HEADING.search(text, last.end())
    return BlockFormat(
        bullets=bullet is not None,
        colon_inside=bool(bullet and bullet.group("colon") == ":**"),
        title_tail=f"({tail.group('before')}Phase {{phase}}{tail.group('after')})" if tail else "",
        title_colon=rest.endswith(":"),
        insert_before=following.group(0).strip() if following else None,
        status_field=status_field,
    )


def render_block(fmt: BlockFormat, milestone_id: str, title: str, facts: list[tuple[str, str]], *, phase: int) -> str:
    """A new milestone's block in the document's own format; `facts` are (key, text) pairs, in order."""
    head = f"**{milestone_id} Enhancements:** {title.strip()}"
    if fmt.title_tail:
        head += " " + fmt.title_tail.replace("{phase}", str(phase))
    if not fmt.bullets:
        listed = ", ".join(f"{key}: {value}" if key else value for key, value in facts)
        return f"{head} - {listed}" if listed else head
    if fmt.title_colon:
        head += ":"
    lines = [head]
    for key, value in facts:
        lines.append(f"- **{key}:** {value}" if fmt.colon_inside else f"- **{key}**: {value}")
    return "\n".join(lines)


def set_status_field(text: str, milestone_id: str, result: str) -> str:
    """Rewrites the status line's last `| **Mnn:** result` field for the new milestone (unchanged when it has none)."""
    first_heading = re.search(r"^## ", text, re.M)  # the status line sits above the first section
    match = _STATUS_FIELD.search(text, 0, first_heading.start() if first_heading else len(text))
    if match is None:
        return text
    one_line = " ".join(result.split())
    return text[: match.start()] + f"| **{milestone_id}:** {one_line}" + text[match.end() :]
