"""Small pure helpers the close phases share: value formatting, diffstat rows and totals, plan sections."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HEADING = re.compile(r"^(?P<hashes>#{1,4})\s+(?P<title>.+?)\s*#*\s*$", re.M)


def fmt(value: Any) -> str:
    """A value as the evidence holds it (no rounding: the summary must equal the files); None -> —."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def cell(text: str, limit: int = 160) -> str:
    """Free text made safe for one Markdown table cell, cut at `limit` characters with a visible marker."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}"
    return f"{size} B"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as dotted keys, in file order."""
    rows: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                rows.extend(flatten(value, name))
            else:
                rows.append((name, value))
    elif prefix:
        rows.append((prefix, data))
    return rows


def evenly_spaced(rows: list[Any], count: int = 10) -> list[Any]:
    """About `count` rows, first and last included, evenly spaced."""
    if count <= 0:
        return []
    if count == 1:
        return list(rows[:1])
    if len(rows) <= count:
        return list(rows)
    picks = sorted({round(i * (len(rows) - 1) / (count - 1)) for i in range(count)})
    return [rows[i] for i in picks]


def change(before: Any, after: Any) -> str:
    """`+0.0123 (+4.5 %)` between two numbers, — otherwise."""
    numeric = (int, float)
    if not isinstance(before, numeric) or not isinstance(after, numeric) or isinstance(before, bool):
        return "—"
    delta = after - before
    return f"{delta:+.6g}" + (f" ({delta / before * 100:+.1f} %)" if before else "")


@dataclass(frozen=True)
class FileRow:
    """One changed path since the baseline, as the summary lists it."""

    path: str
    change: str
    insertions: int | None
    deletions: int | None
    group: str = "work"  # work | document | evidence

    @property
    def plus(self) -> str:
        return "-" if self.insertions is None else str(self.insertions)

    @property
    def minus(self) -> str:
        return "-" if self.deletions is None else str(self.deletions)


@dataclass(frozen=True)
class Totals:
    files: int = 0
    insertions: int = 0
    deletions: int = 0

    @classmethod
    def of(cls, rows: list[FileRow]) -> Totals:
        return cls(
            files=len(rows),
            insertions=sum(r.insertions or 0 for r in rows),
            deletions=sum(r.deletions or 0 for r in rows),
        )

    @property
    def line(self) -> str:
        """Worded exactly as `git diff --shortstat` words it."""
        parts = [f"{self.files} file{'s' if self.files != 1 else ''} changed"]
        if self.insertions or not self.deletions:
            parts.append(f"{self.insertions} insertion{'s' if self.insertions != 1 else ''}(+)")
        if self.deletions or not self.insertions:
            parts.append(f"{self.deletions} deletion{'s' if self.deletions != 1 else ''}(-)")
        return ", ".join(parts)


# --- what people wrote in the plan and answers ------------------------------------------------------


def read_doc(path: Path) -> str:
    try:
        return _COMMENT.sub("", path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return ""


def sections(text: str, pattern: str) -> list[str]:
    """The bodies of the headings whose title matches `pattern` (case-blind), comments dropped."""
    found = []
    headings = list(_HEADING.finditer(text))
    for i, heading in enumerate(headings):
        if not re.search(pattern, heading.group("title"), re.I):
            continue
        level = len(heading.group("hashes"))
        end = len(text)
        for later in headings[i + 1 :]:
            if len(later.group("hashes")) <= level:
                end = later.start()
                break
        body = text[heading.end() : end].strip()
        if body:
            found.append(body)
    return found


def items(body: str) -> list[str]:
    """List items of a Markdown body (`- x`, `* x`, `1. x`), or its paragraphs when it has no list."""
    bullets = [m.group(1).strip() for m in re.finditer(r"^\s*(?:[-*+]|\d+[.)])\s+(.+)$", body, re.M)]
    if bullets:
        return bullets
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip() and not p.lstrip().startswith("|")]
