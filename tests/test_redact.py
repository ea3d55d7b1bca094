import pytest

from tunix_rt.redact import MARKER, redact, scan

SECRETS = [
    ("hf", "token hf_" + "a1B2c3D4e5F6g7H8i9J0kLmN"),
    ("github classic", "ghp_" + "A" * 36),
    ("github fine-grained", "github_pat_" + "11ABCDEFG0" + "x" * 40),
    ("openai", "sk-" + "proj-" + "Z" * 40),
    ("aws", "AKIA" + "ABCDEFGHIJKLMNOP"),
    ("assignment token", "HF_TOKEN=abc123def456"),  # pragma: allowlist secret
    ("assignment key", "export OPENAI_API_KEY='abcd1234abcd'"),  # pragma: allowlist secret
    ("password", "PASSWORD=hunter2hunter2"),  # pragma: allowlist secret
    ("private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),  # pragma: allowlist secret
]


@pytest.mark.parametrize(("kind", "text"), SECRETS)
def test_every_kind_is_redacted(kind: str, text: str) -> None:
    cleaned, kinds = redact(text)
    assert kinds, kind
    assert MARKER in cleaned
    assert not scan(cleaned), cleaned


@pytest.mark.parametrize(
    "text",
    [
        "HF_TOKEN set ✅", "max_new_tokens: 48", f"HF_TOKEN={MARKER}", "tokenizer.json is 33 MB", "HF_TOKEN=$HF_TOKEN",
        # Ordinary code and prose that a case-blind NAME_TOKEN rule used to flag (found closing this repo's M01).
        "tokenizer.pad_token = tokenizer.eos_token", "eos_token=EOS, bos_token=EOS, pad_token=PAD",
        "overall_key = next(k for k in keys)", "the EOS token: training could not teach the model",
        "HF_TOKEN = os.environ['HF_TOKEN']", "token=hub.token()", "SORT_KEY=abc",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == (text, [])


def test_scan_reports_lines() -> None:
    findings = scan("ok\nkey hf_" + "q" * 30 + "\nfine")
    assert [(f.kind, f.line) for f in findings] == [("Hugging Face token", 2)]


def test_allowlist_pragma_skips_a_deliberate_fake() -> None:
    fake = "AKIA" + "ABCDEFGHIJKLMNOP"
    assert scan(f"key = '{fake}'")
    assert not scan(f"key = '{fake}'  # pragma: allowlist secret")
