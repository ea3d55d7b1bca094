"""Secret patterns, in one place: redaction on the way in, and the scan of blobs that `close` commits.

One detector list serves both, so whatever the gate would refuse in a ledger was already redacted
when it was written (a ledger is append-only: a secret that got in would make the milestone
unclosable). The list is detect-secrets' regex plugins (`secret_patterns_data.py`, generated from the
installed library) plus our ML-specific ones: Hugging Face tokens, `NAME_TOKEN=` / `NAME_KEY=` values
(also JSON-quoted), passwords in any case, the AWS credentials-file form, Google API keys, bearer
tokens. Text with no secret costs one pass of one combined regex.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import NamedTuple

from tunix_rt.secret_patterns_data import PATTERNS as _LIBRARY_PATTERNS

MARKER = "[REDACTED]"
# Lines a project marks as holding a deliberate fake secret (the detect-secrets pragma).
ALLOWLIST_PRAGMA = "pragma: allowlist secret"

# Each pattern matches the secret (group 1 when it has one); ours come first so that a whole private
# key block goes, not only the BEGIN line detect-secrets looks for.
_OWN_PATTERNS: tuple[tuple[str, str, int], ...] = (
    ("private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    # `(?<![A-Za-z0-9])`, not `\b`: a token glued to an identifier (`toolu_hf_...`) is still one.
    ("Hugging Face token", r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}", 0),
    ("GitHub token", r"(?<![A-Za-z0-9])(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})", 0),
    ("OpenAI key", r"(?<![A-Za-z0-9])sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}", 0),
    (
        "AWS secret access key",
        r"aws_secret_access_key[\"']?[ \t]*[=:][ \t]*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        re.I,
    ),
    ("Google API key", r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}", 0),
    ("npm token", r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", 0),
    ("bearer token", r"\bBearer[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)", re.I),
)
_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(source, flags)) for kind, source, flags in (*_OWN_PATTERNS, *_LIBRARY_PATTERNS)
)

# NAME_TOKEN=value, NAME_KEY: value, "NAME_KEY": "value", password=value; the name stays visible.
# TOKEN/KEY names are matched in upper case only, the way environment variables and .env files spell
# them (case-blind matching flagged every `pad_token=` in ordinary Python); a name holding PASSWORD,
# PASSWD or SECRET is matched in any case.
_NAME = (
    r"(?:\b(?:[A-Z0-9]+_)*(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD)\b"
    r"|\b(?i:[a-z0-9]+_)*(?i:password|passwd|secret)(?i:_[a-z0-9]+)*\b)"
)
_ASSIGNMENT = re.compile(
    rf"""(?P<name>{_NAME})(?P<sep>["']?[ \t]*[=:][ \t]*)(?P<quote>["']?)(?P<value>[^\s"'`,;]+)"""
)
# A reference to a secret, not a secret: `$HF_TOKEN`, `${X}`, `<your token>`, `os.environ[...]`, a call.
_NOT_A_VALUE = re.compile(r"^(?:\$|<|\{|%|os\.|self\.)|[()\[\]{}]")
# In code, `password=password` or `secret = cfg.secret` passes a variable: letters, `_` and `.` only.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]*")


class Finding(NamedTuple):
    """Where a secret sits (never the secret itself): a 1-based line in text, a byte offset in binary.

    A NamedTuple, not a dataclass: this module is on the agent hook's path, and importing dataclasses
    pulls in inspect, ast and tokenize (about 15 ms of a hook's CPU)."""

    kind: str
    line: int | None
    path: str = ""
    offset: int | None = None


def _assignment_value_ok(name: str, quote: str, value: str) -> bool:
    """Values that are not secrets: already redacted, too short to be one, or a reference to one."""
    if value.startswith(MARKER) or len(value) < 6 or _NOT_A_VALUE.search(value):
        return True
    return not quote and not name.isupper() and _IDENTIFIER.fullmatch(value) is not None


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    r"""The secret inside a detector's match: its group when it has one; else the match without the
    separators some detect-secrets patterns take along (`(?:\s|=|:|"|^)AKC...(?:\s|"|$)`)."""
    for group in range(1, (match.re.groups or 0) + 1):
        if match.group(group):
            return match.span(group)
    start, end = match.span()
    text = match.group(0)
    return start + (len(text) - len(text.lstrip(' \t="\':'))), end - (len(text) - len(text.rstrip(' \t"')))


def redact(text: str) -> tuple[str, list[str]]:
    """Returns the text with every secret replaced by the marker, and the kinds found."""
    found: list[str] = []
    for kind, pattern in _DETECTORS:
        pieces: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            start, end = _secret_span(match)
            if start >= end or text.startswith(MARKER, start):
                continue
            pieces.append(text[last:start])
            pieces.append(MARKER)
            last = end
            found.append(kind)
        if pieces:
            text = "".join(pieces) + text[last:]

    def assignment(match: re.Match[str]) -> str:
        name, quote, value = match.group("name"), match.group("quote"), match.group("value")
        if _assignment_value_ok(name, quote, value):
            return match.group(0)
        found.append(f"{name} value")
        return f"{name}{match.group('sep')}{quote}{MARKER}"

    text = _ASSIGNMENT.sub(assignment, text)
    return text, found


def _locate(text: str) -> list[tuple[str, int]]:
    """(kind, start) of each secret in the text as given: what `redact` replaces, with positions."""
    found: list[tuple[str, int]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = _secret_span(match)
            if start < end and not any(a < end and start < b for a, b in taken):
                taken.append((start, end))
                found.append((kind, start))
    for match in _ASSIGNMENT.finditer(text):
        start, end = match.span("value")
        name, quote, value = match.group("name"), match.group("quote"), match.group("value")
        if not _assignment_value_ok(name, quote, value) and not any(a < end and start < b for a, b in taken):
            found.append((f"{name} value", start))
    return sorted(found, key=lambda item: item[1])


def scan(text: str) -> list[Finding]:
    """Where secrets sit in a text (1-based lines); the redaction marker itself is not one, and a line
    carrying `pragma: allowlist secret` is skipped (a test's planted fake, say).

    Each line is judged on its own, as `redact` sees it; only the lines a whole-text pass marks as
    candidates are judged (a megabyte of metrics is then a few C-level searches, not 45 per line)."""
    findings: list[Finding] = []
    lines = text.splitlines()
    for index in sorted(_candidate_lines(lines)):
        line = lines[index]
        if ALLOWLIST_PRAGMA in line:
            continue
        _, kinds = redact(line)
        findings.extend(Finding(kind, index + 1) for kind in kinds)
    # Multi-line private key blocks are caught on their BEGIN line above.
    return findings


@functools.cache
def _line_patterns() -> tuple[re.Pattern[str], ...]:
    r"""Every pattern `redact` applies, made to see line ends in a joined text as it sees a line's end
    (MULTILINE `^`/`$`, `\Z` read as `$`). Compiled on first use: the hook path never scans."""
    patterns = [p for _, p in _DETECTORS] + [_ASSIGNMENT]
    # A leading lookbehind only narrows a match; without it the search can jump to the literal prefix
    # (`hf_`, `AIza`), which makes it several times faster. Candidates only need to be a superset.
    return tuple(re.compile(_LEADING_LOOKBEHIND.sub("", p.pattern).replace(r"\Z", "$"), p.flags | re.MULTILINE)
                 for p in patterns)


_LEADING_LOOKBEHIND = re.compile(r"^\(\?<[!=](?:\[[^\]]*\]|[^()\[\]])*\)")


def _candidate_lines(lines: list[str]) -> set[int]:
    """Indexes of the lines any pattern can match on its own, found in one pass over the joined lines.

    A superset: a match inside one line is also a match in the joined text at the same place (the
    patterns' lookarounds only exclude letters, digits and `=+/`, which a newline is not), unless an
    earlier match already covers that place, and then that match marks the line too."""
    import bisect

    joined = "\n".join(lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    found: set[int] = set()
    for pattern in _line_patterns():
        for match in pattern.finditer(joined):
            first = bisect.bisect_right(starts, match.start()) - 1
            last = bisect.bisect_right(starts, max(match.start(), match.end() - 1)) - 1
            found.update(range(first, last + 1))
    return found


# --- blobs ------------------------------------------------------------------------------------

# Printable runs in binary data (what `strings` shows): where a pickle, an SQLite page, a safetensors
# header or a checkpoint's tokenizer config keeps its text.
_PRINTABLE = re.compile(rb"[\t\x20-\x7e]{8,}")
_MAX_ARCHIVE_DEPTH = 2
_MAX_MEMBER_BYTES = 256 * 1024 * 1024


def is_binary(data: bytes) -> bool:
    """Git's rule (a NUL byte in the first 8000 bytes), and text that is not UTF-8."""
    if b"\0" in data[:8000]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def scan_blob(path: str, data: bytes) -> list[Finding]:
    """Every secret in the exact bytes of one file: text by line, binary by the byte offset of each
    printable string (and inside the members of a zip archive, such as a torch checkpoint)."""
    if not is_binary(data):
        return [Finding(f.kind, f.line, path) for f in scan(data.decode("utf-8"))]
    return list(_scan_binary(path, data, 0))


def _scan_binary(path: str, data: bytes, depth: int) -> Iterator[Finding]:
    for run in _PRINTABLE.finditer(data):
        text = run.group(0).decode("ascii")
        if ALLOWLIST_PRAGMA in text:
            continue
        for kind, start in _locate(text):
            yield Finding(kind, None, path, run.start() + start)
    if depth < _MAX_ARCHIVE_DEPTH and data[:4] == b"PK\x03\x04":
        yield from _scan_archive(path, data, depth)


def _scan_archive(path: str, data: bytes, depth: int) -> Iterator[Finding]:
    """Compressed members hide their strings from the byte scan, so each member is scanned itself."""
    import zipfile  # only here: a tenth of this module's import time, and only binary blobs need it
    from io import BytesIO

    try:
        archive = zipfile.ZipFile(BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    for info in members:
        if info.compress_type == zipfile.ZIP_STORED or info.file_size > _MAX_MEMBER_BYTES:
            continue  # stored members were scanned in place; an oversized one is refused by size at close
        try:
            member = archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
            continue
        inner = f"{path}:{info.filename}"
        if is_binary(member):
            yield from _scan_binary(inner, member, depth + 1)
        else:
            yield from (Finding(f.kind, f.line, inner) for f in scan(member.decode("utf-8")))
