"""Reads a hand-written tool-calls log (M42–M50 style) into schema objects, keeping verbatim what it does not
understand.

It works on markdown-it-py's block tokens and slices the source lines they map to, so every value is the author's
markdown as written (backticks, emphasis, links), never a re-rendering. Recognised headings become `Entry`,
`Checkpoint` and `Session` objects; any other heading, and content after a `---` under no heading, becomes a `Block`
holding its heading line and body verbatim, with a line in `ParsedLog.kept_raw`. Thematic breaks are separators and
the only thing dropped.

Under a heading, each `**Label:**` line (a bold paragraph line, hard/soft breaks between them, or an M42 list item
`- **Label:** …`) starts a chunk; the lines after it that are not labels continue its value. Field labels fill the
entry's fields; any other label is a free section:
- `**Name:** value` alone -> items=[value]; a one-line value followed on the very next line by a list -> text=value,
  items=the list;
- `**Name:**` with nothing after it owns the blocks below (tables, code, paragraphs -> text) up to and including the
  first list (-> items, ordered for a numbered list);
- content under no label (or after a section's list) -> a section named "" in entries, `text` in checkpoints.

The templates (`templates/_toolcalls.md.j2`) are this module's other half: what they escape, `_unescape_line` and
`_unescape_heading` undo. `ROUND_TRIP` states what that pair guarantees.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Union

from markdown_it import MarkdownIt
from markdown_it.token import Token

from tunix_rt.errors import TunixError
from tunix_rt.ids import canonical_milestone
from tunix_rt.models import ENTRY_FIELD_LABELS, Block, Checkpoint, Entry, Section, Session, Status

Item = Union[Session, Entry, Checkpoint, Block]

ROUND_TRIP = """\
Guarantees (tests/test_toolcalls_render.py):
1. For every log L: parse(render(parse(L))) == parse(L) (milestone, title, and every entry, checkpoint, session and
   block in order), and render(parse(render(parse(L)))) == render(parse(L)) byte for byte.
2. For objects O in the canonical form below: parse(render(O)) == O.
Normalisations (the first import applies them, so they are stable afterwards):
- values are stripped; verbatim markdown (items, section/checkpoint/block text) loses trailing spaces on each line
  (a two-space hard break becomes a soft break) and runs of blank lines collapse to one, as render.normalise does;
- one-line values (timestamp, tools, purpose, status, checkpoint, recovered) keep single newlines but strip each
  line and drop blank ones; a newline in a heading value (entry/checkpoint title, session date, milestone title)
  becomes a space; a carriage return becomes a newline (markdown-it normalises line ends);
- empty list items and an empty `**CHECKPOINT:**` line carry nothing and are dropped;
- numbered lists restart at 1 and bullets use the template's marker;
- `Session.started` is not in the markdown: an imported session has started == date;
- a status given only as the enum renders as its display text (`✅ COMPLETED`), which is then its status_text;
- lists nested more than 200 deep are kept as one raw item (markdown-it's nesting limit, kept below recursion);
- a code fence or HTML block left open (it ran to the end of the file) is closed at the end of its text;
- an empty comment `<!-- -->` ends a list (the templates write one before indented text after a list) and is
  dropped like `---`;
- a lead paragraph of several lines before a list stays an item of its label; the list becomes an unnamed section.
Canonical form (everything the importer produces is in it):
- section names hold no `*` or newline and are not field names (Timestamp, Time, Tool(s), Purpose, Files, Files
  involved/created/changed, Status, CHECKPOINT in entries; Status in checkpoints; Recovered in sessions);
- a tool holds no comma outside brackets and no newline (the Tool line is split on top-level commas);
- an unnamed section is not empty and follows the fields or a section that has items; when it is an entry's first
  section, its items do not all start with `**Label:**` (after field lines, that is M42's field list);
- text holds markdown blocks that are not headings or thematic breaks (and, in sections, not lists).
"""

# --- decoding ---------------------------------------------------------------------------------------------------


def decode(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM) or UTF-16/32 with a BOM (PowerShell's Out-File) -> text with LF line ends."""
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    )
    encoding, body = "utf-8", data
    for bom, name in boms:  # UTF-32 LE first: its BOM starts with UTF-16 LE's
        if data.startswith(bom):
            encoding, body = name, data[len(bom) :]
            break
    else:
        # BOM-less UTF-16 (ASCII text with every other byte zero) is what a redirected PowerShell log looks like.
        if len(data) >= 4 and len(data) % 2 == 0 and data.count(0) * 3 > len(data):
            encoding = "utf-16-le" if data[1::2].count(0) > data[0::2].count(0) else "utf-16-be"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise TunixError(
            f"{source}: not readable as {encoding.upper()} (byte {exc.start}); save it as UTF-8 and retry"
        ) from exc
    if "\x00" in text:
        raise TunixError(f"{source}: holds NUL characters, so it is not a text log")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- escapes shared with the templates ----------------------------------------------------------------------------

# A continuation line of a one-line field that starts with one of these would open a block (list, heading, quote,
# table, HTML, setext underline, link definition) or a new `**Label:**`; the template puts a backslash before it.
_ESCAPED_FIRST = "-+*#>=_|<~[`:"
_ESCAPED_NUMBER = re.compile(r"([0-9]{1,9})\\(\\*[.)])")


def _unescape_line(line: str) -> str:
    """Inverse of the template's `esc` macro on one continuation line."""
    if line[:1] == "\\" and line[1:2] and line[1:2] in _ESCAPED_FIRST + "\\":
        return line[1:]
    match = _ESCAPED_NUMBER.match(line)
    if match:
        return match.group(1) + line[match.end(1) + 1 :]
    return line


def _unescape_heading(text: str) -> str:
    """Inverse of the template's `heading` macro: a closing `#` run it protected with a backslash."""
    core = text.rstrip("#")
    if core != text and core.endswith("\\"):
        bare = core.rstrip("\\")
        if not bare or bare[-1].isspace():
            return core[:-1] + text[len(core) :]
    return text


def looks_like_timestamp(text: str) -> bool:
    """`2026-01-08`, `2026-01-08T[initial]`, `2026-01-09T19:15-19:35`: a date, then no whitespace.

    Written with the same string operations as the template's `is_ts` macro, so both sides agree exactly.
    """
    digits = "0123456789"
    return (
        len(text) >= 10
        and text[4] == "-"
        and text[7] == "-"
        and all(text[i] in digits for i in (0, 1, 2, 3, 5, 6, 8, 9))
        and text.split() == [text]
    )


# --- status vocabulary ---------------------------------------------------------------------------------------------

_STATUS_WORDS: dict[str, Status] = {
    "COMPLETED": "completed",
    "COMPLETE": "completed",
    "DONE": "completed",
    "CLOSED": "completed",
    "FINISHED": "completed",
    "IN PROGRESS": "in-progress",
    "IN-PROGRESS": "in-progress",
    "INPROGRESS": "in-progress",
    "STARTING": "in-progress",
    "STARTED": "in-progress",
    "RUNNING": "in-progress",
    "ONGOING": "in-progress",
    "WIP": "in-progress",
    "FAILED": "failed",
    "FAIL": "failed",
    "FAILURE": "failed",
    "BLOCKED": "blocked",
    "SKIPPED": "skipped",
    "SKIP": "skipped",
    "PLANNED": "planned",
    "PENDING": "planned",
    "TODO": "planned",
    "TO DO": "planned",
    "NOT STARTED": "planned",
}
_STATUS_MARKS: dict[str, Status] = {"✅": "completed", "✔": "completed", "❌": "failed", "⏳": "in-progress"}
_STATUS_REASON = re.compile(r"\s+[—–-]\s+|\s*[:(]")


def status_from_text(text: str) -> Status | None:
    """Maps what real logs wrote onto the vocabulary; None when the wording is not recognised.

    `✅ COMPLETE`, `Complete`, `CLOSED`, `✅ MILESTONE CLOSED` -> completed; `IN PROGRESS`, `STARTING` -> in-progress;
    `FAILED — reason` -> failed (the reason follows " — "); `PENDING`/`TODO` -> planned. A multi-line status is read
    from its last line (the latest word on a stale entry).
    """
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return None
    line = lines[-1].strip()
    start = 0
    while start < len(line) and not line[start].isalnum():
        start += 1
    marks, rest = line[:start], line[start:]
    head = _STATUS_REASON.split(rest, maxsplit=1)[0]
    words = head.replace("*", "").upper().rstrip(".!").split()
    phrase = " ".join(words)
    if phrase in _STATUS_WORDS:
        return _STATUS_WORDS[phrase]
    # "MILESTONE CLOSED", "PHASE 5 COMPLETE", "M43 COMPLETE": a short phrase ending in a completion word.
    if words and words[-1] in ("COMPLETE", "COMPLETED", "CLOSED", "DONE") and "NOT" not in words and len(words) <= 4:
        return "completed"
    if not words:
        for mark, status in _STATUS_MARKS.items():
            if mark in marks:
                return status
    return None


# --- block tree over markdown-it tokens ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Block structure is all the importer reads (values are sliced from the source), so inline parsing is
    # skipped: it halves the time. The default nesting limit (20 levels) would make markdown-it swallow the rest
    # of the file into a deeply nested list; 400 keeps real input whole and stays far from Python's recursion limit.
    return MarkdownIt("commonmark", {"maxNesting": 400}).enable("table").disable("inline")


_END_LIST = "<!-- -->"
_LIST_MARKER = re.compile(r"([-+*]|[0-9]{1,9}[.)])([ \t]*)")


@dataclass
class _Node:
    """One block: a heading, paragraph, list (children: items), list item (children: blocks) or opaque block."""

    type: str
    start: int
    end: int
    container: "_Node | None"  # the list item holding this block, None at top level
    content: str = ""  # inline source for headings
    level: int = 0
    ordered: bool = False
    children: list["_Node"] = field(default_factory=list)
    col: int = 0  # list items: content column relative to the container's view of the line
    first: str = ""  # list items: the first line's content after the marker


class _Source:
    """The source lines, seen from inside nested list items (marker and indentation removed)."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")

    def view(self, container: _Node | None, index: int) -> str:
        if container is None:
            return self.lines[index] if index < len(self.lines) else ""
        if index == container.start:
            return container.first
        return _dedent(self.view(container.container, index), container.col)

    def verbatim(self, container: _Node | None, start: int, end: int) -> str:
        return _tidy([self.view(container, i) for i in range(start, end)])

    def node_text(self, node: _Node) -> str:
        text = self.verbatim(node.container, node.start, node.end)
        return _close_open_block(node.type, text)

    def item_text(self, item: _Node) -> str:
        return self.verbatim(item, item.start, item.end).strip()

    def stripped_lines(self, node: _Node) -> list[str]:
        return [self.view(node.container, i).strip() for i in range(node.start, node.end)]


def _dedent(line: str, width: int) -> str:
    """Removes up to `width` columns of leading whitespace (tabs to 4-column stops), as list items do."""
    column = 0
    for position, char in enumerate(line):
        if column >= width:
            return line[position:]
        if char == " ":
            column += 1
        elif char == "\t":
            column += 4 - column % 4
        else:
            return line[position:]
    return ""


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_HTML_ENDS = (
    (re.compile(r" {0,3}<(script|pre|style|textarea)(?=[\s>]|$)", re.I), None),
    (re.compile(r" {0,3}<!--"), "-->"),
    (re.compile(r" {0,3}<\?"), "?>"),
    (re.compile(r" {0,3}<![A-Za-z]"), ">"),
    (re.compile(r" {0,3}<!\[CDATA\["), "]]>"),
)


def _close_open_block(kind: str, text: str) -> str:
    """Closes a code fence or HTML block left open: in the source it ran to the end of the file, but rendered
    among other blocks it would swallow every one after it."""
    lines = text.split("\n")
    if kind == "fence":
        opening = _FENCE.match(lines[0])
        if opening:
            fence = opening.group(1)
            closing = re.compile(r" {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*")
            if len(lines) < 2 or not closing.fullmatch(lines[-1]):
                return text + "\n" + fence
    elif kind == "html_block":
        for start, end in _HTML_ENDS:
            match = start.match(lines[0])
            if match:
                end = end or f"</{match.group(1).lower()}>"
                if end.lower() not in text[match.end() :].lower():
                    return text + "\n" + end
                break
    return text


def _tidy(lines: list[str]) -> str:
    """Trailing spaces off, blank-line runs collapsed, blank edges dropped (what render.normalise would do)."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip(" \t")
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _tree(tokens: list[Token], source: _Source) -> list[_Node]:
    nodes: list[_Node] = []
    _build(tokens, 0, len(tokens), None, source, nodes)
    return nodes


def _close_index(tokens: list[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _build(tokens: list[Token], i: int, stop: int, container: _Node | None, source: _Source, out: list[_Node]) -> None:
    while i < stop:
        token = tokens[i]
        if (
            token.nesting == -1
            or token.map is None
            or (token.type == "html_block" and token.content.strip() == _END_LIST)
        ):
            i += 1  # `<!-- -->` only ends a list (CommonMark's idiom, which the templates use): a separator
            continue
        j = _close_index(tokens, i) if token.nesting == 1 else i
        start, end = token.map
        if token.type == "heading_open":
            node = _Node("heading", start, end, container, tokens[i + 1].content, level=int(token.tag[1:]))
        elif token.type == "paragraph_open":
            node = _Node("paragraph", start, end, container)
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            node = _Node("list", start, end, container, ordered=token.type == "ordered_list_open")
            k = i + 1
            while k < j:
                if tokens[k].type == "list_item_open":
                    close = _close_index(tokens, k)
                    node.children.append(_list_item(tokens, k, close, container, source))
                    k = close + 1
                else:
                    k += 1
        elif token.type == "hr":
            node = _Node("hr", start, end, container)
        else:  # table, fence, code block, blockquote, HTML: kept as verbatim markdown
            node = _Node(token.type.removesuffix("_open"), start, end, container)
        out.append(node)
        i = j + 1


def _list_item(tokens: list[Token], i: int, close: int, container: _Node | None, source: _Source) -> _Node:
    start, end = tokens[i].map  # type: ignore[misc]
    line = source.view(container, start)
    body = line.lstrip(" ")
    indent = len(line) - len(body)
    match = _LIST_MARKER.match(body)
    col, first = indent, body
    if match:
        marker_end = indent + match.end(1)
        gap = match.group(2)
        rest = body[match.end(2) :]
        if not rest or "\t" in gap or len(gap) > 4:
            # a bare marker, a tab, or indented code right after the marker: content starts one column in
            col, first = marker_end + 1, line[marker_end + 1 :]
        else:
            col, first = marker_end + len(gap), rest
    item = _Node("item", start, end, container, col=col, first=first)
    _build(tokens, i + 1, close, item, source, item.children)
    return item


# --- labels and chunks ---------------------------------------------------------------------------------------------

_LABEL = re.compile(r"\*\*([^*\n]+?)(?::\*\*|\*\*:)[ \t]*(.*)")
_ENTRY_FIELDS = ENTRY_FIELD_LABELS
_LIST_FIELDS = ("tools", "files")


@dataclass
class _Chunk:
    """A `**Label:**` with its inline value lines and the blocks it owns; label "" for unlabelled content."""

    label: str
    line: int
    value: list[str] = field(default_factory=list)  # stripped source lines; [0] follows the label
    blocks: list[_Node] = field(default_factory=list)  # non-list blocks it absorbed (verbatim text)
    items: _Node | None = None  # the list it absorbed
    sealed: bool = False
    last_line: int = -1  # end line of the paragraph holding the value, for "a list directly below"
    lead: list[str] = field(default_factory=list)  # unlabelled paragraph lines (verbatim), label "" only


class _Body:
    """Splits the blocks under one heading into chunks, following the rules in the module notes."""

    def __init__(self, source: _Source, fields: dict[str, str], label_lists: bool = False) -> None:
        self.source = source
        self.fields = fields
        self.label_lists = label_lists  # M42's `- **Tool:** …` field lists exist in entries only
        self.chunks: list[_Chunk] = []

    def field_of(self, chunk: _Chunk) -> str | None:
        return self.fields.get(chunk.label.strip().lower()) if chunk.label else None

    def absorbs(self, chunk: _Chunk, node: _Node) -> bool:
        if chunk.sealed:
            return False
        kind = self.field_of(chunk)
        if kind is not None:
            # Fields own a list only when their line is empty (`**Files involved:**` then the list).
            return kind in _LIST_FIELDS and node.type == "list" and not "".join(chunk.value)
        if chunk.label and "".join(chunk.value):
            # "**Result:** lead text:" owns only a list that starts on the very next line, and only when the lead
            # is that one line (a longer lead stays an item: it could not be written back inline).
            return (
                node.type == "list" and node.start == chunk.last_line and chunk.value[0] != "" and len(chunk.value) == 1
            )
        return True

    def add(self, node: _Node) -> None:
        if node.type == "paragraph" and self._paragraph(node):
            return
        owner = self._owner(node)
        if owner is None:
            current = self.chunks[-1] if self.chunks else None
            opens_body = current is None or self.field_of(current) is not None
            if node.type == "list" and self.label_lists and opens_body and self._label_list(node):
                return
            owner = _Chunk("", node.start)
            self.chunks.append(owner)
        if node.type == "list":
            owner.items = node
            owner.sealed = True
        else:
            owner.blocks.append(node)

    def _owner(self, node: _Node) -> _Chunk | None:
        """The chunk a block belongs to: the latest that takes it, looking back past field lines (which render
        first, so a section written before them still owns what follows them)."""
        for chunk in reversed(self.chunks):
            if self.absorbs(chunk, node):
                return chunk
            if self.field_of(chunk) is None:
                return None
        return None

    def _paragraph(self, node: _Node) -> bool:
        """A paragraph with `**Label:**` lines: each starts a chunk; False when it holds none (plain text)."""
        lines = self.source.stripped_lines(node)
        labelled = [i for i, line in enumerate(lines) if _LABEL.match(line)]
        if not labelled:
            return False
        if labelled[0] > 0:  # plain lines before the first label: text of their own
            lead = _Node("paragraph", node.start, node.start + labelled[0], node.container)
            self.add(lead)
        current: _Chunk | None = None
        for i in range(labelled[0], len(lines)):
            match = _LABEL.match(lines[i])
            if match:
                current = _Chunk(match.group(1).strip(), node.start + i, [match.group(2).strip()])
                self.chunks.append(current)
            elif current is not None and lines[i]:
                current.value.append(lines[i])
            if current is not None:
                current.last_line = node.end
        return True

    def _label_list(self, node: _Node) -> bool:
        """M42 style: a bullet list of `- **Label:** value` items among an entry's fields.

        Only a list that opens the body or follows field lines counts: after a section it is an unnamed section
        whose items happen to start in bold, and a label above it with nothing after it owns it.
        """
        if node.ordered or not node.children:
            return False
        firsts = [item.children[0] if item.children else None for item in node.children]
        if not all(
            first is not None
            and first.type == "paragraph"
            and _LABEL.match(self.source.stripped_lines(first)[0] if first.end > first.start else "")
            for first in firsts
        ):
            return False
        for item in node.children:
            for child in item.children:
                self.add(child)
            if self.chunks:
                self.chunks[-1].sealed = True  # an item's content never runs on into the next item
        return True

    # --- chunk values ---

    def inline_value(self, chunk: _Chunk) -> str:
        """A one-line field: the value lines, continuation lines unescaped."""
        lines = [line for line in chunk.value if line]
        if not chunk.value or not chunk.value[0]:
            lines = [_unescape_line(line) for line in lines]
        else:
            lines = lines[:1] + [_unescape_line(line) for line in lines[1:]]
        return "\n".join(lines)

    def items(self, chunk: _Chunk) -> list[str]:
        if chunk.items is None:
            return []
        texts = [self.source.item_text(item) for item in chunk.items.children]
        return [text for text in texts if text]

    def text(self, chunk: _Chunk) -> str:
        parts = [self.source.node_text(block) for block in chunk.blocks]
        return "\n\n".join(part for part in parts if part)

    def verbatim(self, chunk: _Chunk) -> str:
        """Everything a chunk holds, as markdown (for checkpoint text)."""
        nodes = list(chunk.blocks) + ([chunk.items] if chunk.items else [])
        parts = [self.source.node_text(node) for node in nodes]
        return "\n\n".join(part for part in parts if part)

    def section(self, chunk: _Chunk) -> Section:
        value = "\n".join(line for line in chunk.value if line)
        items = self.items(chunk)
        ordered = bool(chunk.items and chunk.items.ordered)
        if chunk.items is not None:
            text = "\n\n".join(part for part in (value, self.text(chunk)) if part)
            return Section(name=chunk.label, items=items, text=text, ordered=ordered)
        if chunk.blocks:
            return Section(name=chunk.label, text=self.text(chunk))
        return Section(name=chunk.label, items=[value] if value else [])


# --- headings ------------------------------------------------------------------------------------------------------

_TITLE = re.compile(r"([Mm][0-9]{1,6})\s+Tool[\s-]*Calls?\s+Log(?:\s*(?:[—–:]|\s-)\s*(.*))?", re.I)
_ENTRY = re.compile(r"Entry\s+([0-9]+(?:\s*-\s*[0-9]+)?)(?:\s*[:—–]\s*|\s+-\s+|\s*$)(.*)", re.I | re.S)
_CHECKPOINT = re.compile(r"(FINAL\s+)?CHECKPOINT(?:\s*[:—–]\s*|\s+-\s+|\s*$)(.*)", re.I | re.S)
_SESSION_FIRST = re.compile(r"Session\s+Start(?:\s*[:—–]\s*|\s+-\s+|\s*$)(.*)", re.I | re.S)
_SESSION_LAST = re.compile(r"(.+?)\s*(?:[:—–]|\s-)\s*Session\s+Start", re.I | re.S)


@dataclass
class ParsedLog:
    """What a hand-written log holds: its id and title, the timeline in document order, and what was kept raw."""

    milestone: str | None
    title: str
    items: list[Item]
    kept_raw: list[str]


class _Reader:
    def __init__(self, text: str) -> None:
        self.source = _Source(text)
        self.nodes = _tree(_parser().parse(text), self.source)
        self.milestone: str | None = None
        self.title = ""
        self.items: list[Item] = []
        self.kept_raw: list[str] = []
        self.last_entry: int | None = None
        self.sessions = 0

    def read(self) -> ParsedLog:
        heading: _Node | None = None
        body: list[_Node] = []
        for node in self.nodes:
            if node.type in ("heading", "hr"):
                self.flush(heading, body)
                heading, body = (node if node.type == "heading" else None), []
                if node.type == "heading" and self.header(node):
                    heading = None
                continue
            body.append(node)
        self.flush(heading, body)
        return ParsedLog(self.milestone, self.title, self.items, self.kept_raw)

    def header(self, node: _Node) -> bool:
        """The first `# M43 Tool Calls Log[ — Title]` names the milestone; it is not a timeline item."""
        if node.level != 1 or self.milestone is not None:
            return False
        match = _TITLE.fullmatch(node.content.strip())
        if not match:
            return False
        self.milestone = canonical_milestone(match.group(1))
        self.title = _unescape_heading((match.group(2) or "").strip())
        return True

    def flush(self, heading: _Node | None, body: list[_Node]) -> None:
        if heading is None:
            if body:
                self.block("", body, body[0].start)
            return
        text = heading.content.strip()
        if heading.level >= 2 or not self._is_title_like(text):
            match = _ENTRY.fullmatch(text)
            if match:
                self.entry(heading, match, body)
                return
            match = _CHECKPOINT.fullmatch(text)
            if match:
                self.checkpoint(match, body)
                return
            match = _SESSION_FIRST.fullmatch(text) or _SESSION_LAST.fullmatch(text)
            if match and heading.level >= 2:
                self.session(match.group(1), body)
                return
        self.block(self.source.verbatim(None, heading.start, heading.end), body, heading.start)

    @staticmethod
    def _is_title_like(text: str) -> bool:
        return bool(_TITLE.fullmatch(text))

    # --- items ---

    def block(self, heading: str, body: list[_Node], line: int) -> None:
        text = self.source.verbatim(None, body[0].start, body[-1].end) if body else ""
        if body:  # only the last block can be an open fence or HTML block: it ran to the end of the file
            last = self.source.verbatim(None, body[-1].start, body[-1].end)
            text += _close_open_block(body[-1].type, last)[len(last) :]
        self.items.append(Block(heading=heading, text=text, after_entry=self.last_entry))
        what = repr(heading) if heading else repr(_first_line(text))
        self.kept_raw.append(f"line {line + 1}: {what} not understood; kept verbatim as a raw block")

    def entry(self, heading: _Node, match: re.Match[str], body_nodes: list[_Node]) -> None:
        label = re.sub(r"\s+", "", match.group(1))
        rest = _unescape_heading(match.group(2).strip())
        body = self._body(body_nodes, _ENTRY_FIELDS)
        values: dict[str, list[str]] = {"timestamp": [], "purpose": [], "status": [], "checkpoint": []}
        tools: list[str] = []
        files: list[str] = []
        sections: list[Section] = []
        has_timestamp = False
        for chunk in body.chunks:
            kind = body.field_of(chunk)
            if kind == "tools":
                for line in chunk.value:
                    tools.extend(_split_tools(line))
                tools.extend(tool for item in body.items(chunk) for tool in _split_tools(item.replace("\n", " ")))
            elif kind == "files":
                for line in chunk.value:
                    files.extend(_split_files(line))
                files.extend(body.items(chunk))
            elif kind is not None:
                has_timestamp = has_timestamp or kind == "timestamp"
                value = body.inline_value(chunk)
                if value:
                    values[kind].append(value)
            else:
                section = body.section(chunk)
                if section.name or section.items or section.text:  # a list of empty items carries nothing
                    sections.append(section)
        timestamp = "\n".join(values["timestamp"])
        title = rest
        if rest and not has_timestamp and looks_like_timestamp(rest):
            timestamp, title = rest, ""
        status_text = "\n".join(values["status"])
        status = status_from_text(status_text) if status_text else None
        number = int(re.match(r"[0-9]+", label).group(0))  # type: ignore[union-attr]
        if status_text and status is None:
            self.kept_raw.append(
                f"line {heading.start + 1}: entry {label} status {status_text!r} is not in the vocabulary; "
                "kept as its text with no status"
            )
        self.items.append(
            Entry(
                number=number,
                label=label,
                title=title,
                timestamp=timestamp,
                tools=tools,
                purpose="\n".join(values["purpose"]),
                files=files,
                status=status,
                status_text=status_text,
                sections=sections,
                checkpoint="\n".join(values["checkpoint"]) or None,
                source="import",
            )
        )
        self.last_entry = number

    def checkpoint(self, match: re.Match[str], body_nodes: list[_Node]) -> None:
        body = self._body(body_nodes, {"status": "status"})
        statuses: list[str] = []
        sections: list[Section] = []
        texts: list[str] = []
        for chunk in body.chunks:
            if body.field_of(chunk) == "status":
                value = body.inline_value(chunk)
                if value:
                    statuses.append(value)
            elif chunk.label:
                sections.append(body.section(chunk))
            else:
                texts.append(body.verbatim(chunk))
        status_text = "\n".join(statuses)
        status = status_from_text(status_text) if status_text else None
        title = _unescape_heading(match.group(2).strip())
        if status_text and status is None:
            self.kept_raw.append(
                f"checkpoint {title!r}: status {status_text!r} is not in the vocabulary;"
                " kept as its text with no status"
            )
        self.items.append(
            Checkpoint(
                title=title,
                status=status,
                status_text=status_text,
                sections=sections,
                text="\n\n".join(t for t in texts if t),
                after_entry=self.last_entry,
                final=bool(match.group(1)),
            )
        )

    def session(self, date: str, body_nodes: list[_Node]) -> None:
        self.sessions += 1
        date = _unescape_heading(date.strip())
        body = self._body(body_nodes, {"recovered": "recovered"})
        recovered: list[str] = []
        rest: list[_Node] = []
        for chunk in body.chunks:
            if body.field_of(chunk) == "recovered" and not chunk.blocks and chunk.items is None:
                value = body.inline_value(chunk)
                if value:
                    recovered.append(value)
        if body.chunks and not all(
            body.field_of(c) == "recovered" and not c.blocks and c.items is None for c in body.chunks
        ):
            rest = body_nodes  # anything else under the heading stays verbatim, after the session
            recovered = []
        self.items.append(
            Session(number=self.sessions, date=date, started=date, recovered="\n".join(recovered) or None)
        )
        if rest:
            self.block("", rest, rest[0].start)

    def _body(self, nodes: list[_Node], fields: dict[str, str]) -> _Body:
        body = _Body(self.source, fields, label_lists=fields is _ENTRY_FIELDS)
        for node in nodes:
            body.add(node)
        return body


def _first_line(text: str) -> str:
    line = text.split("\n", 1)[0]
    return line if len(line) <= 60 else line[:57] + "..."


def _top_level_split(text: str) -> list[str]:
    """Splits on commas outside parentheses/brackets: `run_terminal_cmd (git commit + push), write` is two tools."""
    current: list[str] = []
    parts, depth = [], 0
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _split_tools(line: str) -> list[str]:
    return _top_level_split(line)


_PATHLIKE = re.compile(r"`?[\w.~/\\*-]+`?")


def _split_files(line: str) -> list[str]:
    """An inline Files value is one item, or several when it is a comma-separated list of paths."""
    line = line.strip()
    if not line:
        return []
    parts = [part.strip() for part in line.split(",")]
    if len(parts) > 1 and all(
        part and _PATHLIKE.fullmatch(part) and ("/" in part or "." in part) for part in parts
    ):
        return parts
    return [line]


def parse(text: str) -> ParsedLog:
    """Reads a hand-written tool-calls log (already decoded); never raises on odd markdown, it keeps it raw."""
    return _Reader(text).read()


_CLOSURE = re.compile(r"MILESTONE\s+(?:CLOSED|COMPLETE)|SESSION\s+COMPLETE|^M[0-9]+\s+(?:COMPLETE|CLOSED)$", re.I)


def closure(parsed: ParsedLog) -> str | None:
    """The heading of the block in which a log says its milestone closed, or None.

    `## M46 MILESTONE CLOSED`, `# M45 MILESTONE CLOSED`, `## M42 Session Complete`, `## FINAL CHECKPOINT[: ...]`
    and a completed `## CHECKPOINT: M46 Complete`; the last one wins (a log may close, then add a push note).
    """
    for item in reversed(parsed.items):
        if isinstance(item, Block) and item.heading:
            text = item.heading.lstrip("#").strip()
            if _CLOSURE.search(text):
                return text
        elif isinstance(item, Checkpoint):
            title = item.title.strip()
            if item.final and item.status in (None, "completed"):
                return f"FINAL CHECKPOINT: {title}" if title else "FINAL CHECKPOINT"
            if _CLOSURE.search(title) and item.status in (None, "completed"):
                return f"CHECKPOINT: {title}"
    return None


# --- enrichment: what an import adds on top of the verbatim parse ------------------------------------------------
# `parse` keeps values as written (its round trip with the templates is exact). An import then applies `enrich`,
# which reads the later layouts' conventions into the schema; the templates write its results back in a form that
# `enrich(parse(...))` reads the same way again (tests/test_legacy.py checks that fixed point on every layout).

_TOOL_NOTE = re.compile(r"([^\s()]+)\s*\((.+)\)")
_FILE_DASH = re.compile(r"(.+?)\s+[—–]\s+(.+)|(.+?)\s+-\s+(.+)")
_FILE_PAREN = re.compile(r"(.+?)\s*\(([^()]+)\)")
_DIFFSTAT = re.compile(r"[0-9]+ files? changed|[0-9]+ insertions?\(\+\)|[0-9]+ deletions?\(-\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*\"'(])")
# A result says how the step went only in its first words ("Failed — ...", "❌ Blocked on ...") or in capitals
# ("... FAILED"): elsewhere "failure" and "error" are as often the topic ("Error Injection: 21 errors injected").
_RESULT_WORDS: tuple[tuple[re.Pattern[str], Status], ...] = (
    (re.compile(r"(?i:^\W*(?:fail(?:ed|s|ure)?\b|errors?\s*:|crash(?:ed)?\b|broken\b))|\bFAILED\b"), "failed"),
    (re.compile(r"(?i:^\W*(?:blocked|blocker)\b)|\bBLOCKED\b"), "blocked"),
    (re.compile(r"(?i:^\W*skipped\b)|\bSKIPPED\b"), "skipped"),
    (
        re.compile(
            r"(?i:^\W*(?:in progress|ongoing|still running|not (?:yet )?(?:done|complete|finished))\b)|\bIN PROGRESS\b"
        ),
        "in-progress",
    ),
)
_TITLE_LIMIT = 80


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`" and "`" not in text[1:-1]:
        return text[1:-1]
    return text


def is_path(text: str) -> bool:
    """A files value that names a path: not prose such as `Git repository` or a diffstat line."""
    text = _unquote(text)
    if not text or "\n" in text or _DIFFSTAT.search(text):
        return False
    return " " not in text or "/" in text or "\\" in text


def split_file(text: str) -> tuple[str, str]:
    """`` `x.md` — Authoritative plan `` -> (`x.md`, `Authoritative plan`); `path (145 traces)` -> (path, note)."""
    text = text.strip()
    match = _FILE_DASH.fullmatch(text)
    if match:
        path, note = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        if is_path(path):
            return _unquote(path), note.strip()
    match = _FILE_PAREN.fullmatch(text)
    if match and is_path(match.group(1)):
        return _unquote(match.group(1)), match.group(2).strip()
    return _unquote(text), ""


def status_from_result(text: str) -> Status:
    """What a `**Result:**` says about the step: failed, blocked, skipped or still going when its words say so
    (`no errors` does not), else completed."""
    for pattern, status in _RESULT_WORDS:
        if pattern.search(text):
            return status
    return "completed"


def first_sentence(text: str) -> str:
    """A title from a purpose: its first line's first sentence, without the closing full stop, at most 80 chars."""
    line = text.strip().split("\n", 1)[0].strip()
    sentence = _SENTENCE_END.split(line, maxsplit=1)[0].strip().rstrip(".").strip()
    if len(sentence) > _TITLE_LIMIT:
        cut = sentence[:_TITLE_LIMIT].rsplit(" ", 1)[0]
        sentence = (cut or sentence[:_TITLE_LIMIT]).rstrip(",;:") + "…"
    return sentence


def _enrich_entry(entry: Entry) -> Entry:
    from tunix_rt.models import STATUS_DISPLAY, Note

    entry = entry.model_copy(deep=True)
    notes: list[Note] = [n for n in entry.notes if n.kind == "files"]
    tools: list[str] = []
    for tool in entry.labelled_tools():
        match = _TOOL_NOTE.fullmatch(tool.strip())
        if match:
            notes.append(Note(kind="tool", index=len(tools), text=match.group(2).strip()))
            tools.append(match.group(1))
        else:
            tools.append(tool)
    files: list[str] = []
    values: list[str] = []
    for value in entry.labelled_files()[: len(entry.files)]:
        parts = [part.strip() for part in value.split(",")] if "\n" not in value else [value]
        # `.venv-gpu, Git repository`: a path and prose on one line are two values
        values.extend(parts if len(parts) > 1 and any(is_path(split_file(p)[0]) for p in parts) else [value])
    for value in values:
        if not is_path(split_file(value)[0]):
            if not any(n.kind == "files" and n.text == value for n in notes):
                notes.append(Note(kind="files", index=-1, text=value))
            continue
        path, note = split_file(value)
        if note:
            notes.append(Note(kind="file", index=len(files), text=note))
        files.append(path)
    entry.tools, entry.files = tools, files
    entry.notes = sorted(notes, key=lambda n: (n.kind != "tool", n.kind != "file", n.index))
    if entry.status is None and not entry.status_text:
        result = next((s for s in entry.sections if s.name.lower() == "result"), None)
        if result is not None:
            inline = len(result.items) == 1 and not result.text and "\n" not in result.items[0]
            said = result.items[0] if inline else "\n".join([result.text, *result.items])
            entry.status = status_from_result(said)
            if inline:  # the Result line becomes the status line, its words kept after the status they give
                agrees = status_from_text(said) == entry.status
                entry.status_text = said if agrees else f"{STATUS_DISPLAY[entry.status]} — {said}"
                entry.sections.remove(result)
            else:
                entry.status_text = STATUS_DISPLAY[entry.status]
    if not entry.title:
        action = next((s for s in entry.sections if s.name.lower() in ("action", "actions") and s.items), None)
        source = entry.purpose or (action.items[0] if action else "")
        entry.title = " ".join(first_sentence(source).split()) if source.strip() else ""
    return entry


def enrich(parsed: ParsedLog) -> ParsedLog:
    """The later layouts' conventions read into the schema (see the notes above); what it cannot place stays as is."""
    items: list[Item] = [_enrich_entry(item) if isinstance(item, Entry) else item for item in parsed.items]
    return ParsedLog(parsed.milestone, parsed.title, items, parsed.kept_raw)
