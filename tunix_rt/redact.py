"""Secret patterns, in one place: redaction on the way in and the scan that `close` runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = "[REDACTED]"

# Each pattern matches the secret value itself; for NAME=value forms only the value group is replaced.
_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}")),
    ("OpenAI key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
)
# NAME_TOKEN=value, NAME_KEY: value, PASSWORD=value (also export/quoted forms); the name stays visible.
# Names are matched in upper case only, the way environment variables and .env files spell them:
# case-blind matching flagged every `pad_token=` and `token = ...` in ordinary Python code.
_ASSIGNMENT = re.compile(
    r"""(?P<name>\b(?:[A-Z0-9]+_)*(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD)\b)(?P<sep>[ \t]*[=:][ \t]*)(?P<quote>["']?)"""
    r"""(?P<value>[^\s"'`,;]+)"""
)
# A reference to a secret, not a secret: `$HF_TOKEN`, `${X}`, `<your token>`, `os.environ[...]`, a call.
_NOT_A_VALUE = re.compile(r"^(?:\$|<|\{|%|os\.|self\.)|[()\[\]{}]")
# Lines a project marks as holding a deliberate fake secret (the detect-secrets pragma).
ALLOWLIST_PRAGMA = "pragma: allowlist secret"


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int


def _assignment_value_ok(value: str) -> bool:
    """Values that are not secrets: already redacted, too short to be one, or a reference to one."""
    return value.startswith(MARKER) or len(value) < 6 or bool(_NOT_A_VALUE.search(value))


def redact(text: str) -> tuple[str, list[str]]:
    """Returns the text with every secret replaced by the marker, and the kinds found."""
    found: list[str] = []
    for kind, pattern in _TOKEN_PATTERNS:
        text, count = pattern.subn(MARKER, text)
        found.extend([kind] * count)

    def assignment(match: re.Match[str]) -> str:
        if _assignment_value_ok(match.group("value")):
            return match.group(0)
        found.append(f"{match.group('name')} value")
        return f"{match.group('name')}{match.group('sep')}{match.group('quote')}{MARKER}"

    text = _ASSIGNMENT.sub(assignment, text)
    return text, found


def scan(text: str) -> list[Finding]:
    """Where secrets sit in a text (1-based lines); the redaction marker itself is not one, and a line
    carrying `pragma: allowlist secret` is skipped (a test's planted fake, say)."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if ALLOWLIST_PRAGMA in line:
            continue
        _, kinds = redact(line)
        findings.extend(Finding(kind, number) for kind in kinds)
    # Multi-line private key blocks are caught on their BEGIN line above.
    return findings
