import pytest

from tunix_rt.redact import MARKER, redact, scan

SECRETS = [
    ("hf", "token hf_" + "a1B2c3D4e5F6g7H8i9J0kLmN"),
    ("github classic", "ghp_" + "A" * 36),
    ("github fine-grained", "github_pat_" + "11ABCDEFG0" + "x" * 40),
    ("openai", "sk-" + "proj-" + "Z" * 40),
    ("aws", "AKIA" + "ABCDEFGHIJKLMNOP"),
    ("assignment token", "HF_TOKEN=abc123def456"),
    ("assignment key", "export OPENAI_API_KEY='abcd1234abcd'"),
    ("password", "PASSWORD=hunter2hunter2"),
    ("private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
]


@pytest.mark.parametrize(("kind", "text"), SECRETS)
def test_every_kind_is_redacted(kind: str, text: str) -> None:
    cleaned, kinds = redact(text)
    assert kinds, kind
    assert MARKER in cleaned
    assert not scan(cleaned), cleaned


@pytest.mark.parametrize(
    "text",
    ["HF_TOKEN set ✅", "max_new_tokens: 48", f"HF_TOKEN={MARKER}", "tokenizer.json is 33 MB", "HF_TOKEN=$HF_TOKEN"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == (text, [])


def test_scan_reports_lines() -> None:
    findings = scan("ok\nkey hf_" + "q" * 30 + "\nfine")
    assert [(f.kind, f.line) for f in findings] == [("Hugging Face token", 2)]
