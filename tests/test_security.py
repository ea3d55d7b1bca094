"""Security: planted secrets never reach a ledger, a view or any commit; templates stay sandboxed; evidence stays inside.

tests/test_redact.py tests the patterns and tests/test_cli.py one token through `log entry`; tests/test_close.py
that close refuses a file holding a secret. Here every kind of secret goes through every way in (entry fields,
amendments, checkpoints, sessions, titles, the baseline patch, imported logs, run configs, run output and
evidence, --summary), then the whole git history is scanned, blob by blob.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git
from tunix_rt.redact import MARKER

from _runs_support import install_fake_plugin

MILESTONE = str(Path(sys.executable).with_name("milestone"))
PHASE = "ProjectFiles/Milestones/Phase1"

# One of every kind the spec names; built by concatenation so this file itself holds none of them whole.
SECRETS = {
    "hf": "hf_" + "Qw3rTy7UiOp9AsDfGhJkLzXcVbNm12",
    "github classic": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "github fine-grained": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123",
    "openai": "sk-" + "proj-" + "Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2Gg1Ff0",
    "aws": "AKIA" + "QWERTYUIOPASDFGH",
    "token assignment": "WANDB_API_TOKEN=" + "s3cr3tW4ndbV4lu3Xyz",
    "key assignment": "MY_SERVICE_KEY: " + "k3yV4lu3Qwerty99",
    "password": "PASSWORD=" + "hunter2hunter2",  # pragma: allowlist secret
}
# What must never appear: the secret part of each (an assignment's name may stay visible).
NEEDLES = {kind: (value.split("=", 1)[1] if "=" in value else value.split(": ", 1)[1] if ": " in value else value)
           for kind, value in SECRETS.items()}
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "MIIEow" + "IBAAKCAQEA7s3cr3tK3yM4t3r14l\n-----END RSA PRIVATE KEY-----"  # pragma: allowlist secret
NEEDLES["private key"] = "MIIEow" + "IBAAKCAQEA7s3cr3tK3yM4t3r14l"


def leaks(data: bytes) -> list[str]:
    return [kind for kind, needle in NEEDLES.items() if needle.encode() in data]


def files_leaking(root: Path, *, include_git: bool = False) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if not include_git and rel.parts[0] == ".git":
            continue
        if path.is_file():
            kinds = leaks(path.read_bytes())
            if kinds:
                found[rel.as_posix()] = kinds
    return found


def history_leaks(root: Path) -> dict[str, list[str]]:
    """Every blob reachable from any ref, every commit message: the whole history, not just HEAD."""
    found = {}
    objects = git(root, "rev-list", "--all", "--objects").split("\n")
    for line in objects:
        if not line.strip():
            continue
        sha = line.split()[0]
        kind = git(root, "cat-file", "-t", sha).strip()
        if kind in ("blob", "commit", "tag"):
            data = subprocess.run(["git", "cat-file", kind, sha], cwd=root, capture_output=True, check=True).stdout
            hits = leaks(data)
            if hits:
                found[line] = hits
    return found


def cli(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MILESTONE, *args], cwd=root, capture_output=True, text=True, input=stdin, timeout=300)


def test_secrets_in_every_cli_field_never_reach_disk_or_history(project, run_cli) -> None:
    root = project.root
    every = " ".join(SECRETS.values())
    # A dirty file at start: the baseline patch is written into the milestone folder.
    (root / "README.md").write_text(f"# demo\nexport {SECRETS['token assignment']}\n", encoding="utf-8")
    assert run_cli("start", "M44", "--title", f"Title {SECRETS['hf']}").code == 0
    for kind, value in SECRETS.items():
        r = run_cli("log", "entry", "-t", f"use {value}", "--tool", f"shell {value}", "-p", f"purpose {value}",
                    "--file", f"path/{value}.txt", "--section", f"Results=got {value}", "--section", f"Note {kind}={value}",
                    "--checkpoint", f"cp {value}", "--status", "completed")
        assert r.code == 0, r
        assert "redacted" in r.err, (kind, r.err)
    assert run_cli("log", "entry", "-t", "key", "--tool", "x", "-p", "p", "--section", f"Key={PRIVATE_KEY}",
                   "--status", "completed").code == 0
    assert run_cli("log", "update", "1", "--status", "failed", "--status-text", f"FAILED — {every}",
                   "--section", f"Attempts={every}").code == 0
    assert run_cli("log", "checkpoint", f"standalone {every}", "--standalone", "--status", "completed").code == 0
    assert run_cli("log", "session", "--recovered", f"recovered {every}").code == 0
    assert run_cli("render").code == 0
    on_disk = files_leaking(root)
    # The user's own dirty README is theirs; nothing the tool wrote may hold a secret.
    assert set(on_disk) <= {"README.md"}, on_disk
    assert MARKER in (root / PHASE / "M44_toolcalls.md").read_text(encoding="utf-8")
    shown = run_cli("show", "--json")
    assert not leaks(shown.out.encode()), "show --json printed a secret"
    (root / "README.md").write_text("# demo\n", encoding="utf-8")
    r = run_cli("close", "--skip-hooks", "--force", "--summary", f"Summary {every}")
    assert r.code == 0, r
    assert not files_leaking(root, include_git=False), files_leaking(root)
    assert not history_leaks(root)


LEGACY_LOG = """# M43 Tool Calls Log

## Session Start: 2026-01-08

### Entry 1 — Set up {hf}
**Timestamp:** 2026-01-08T[start]
**Tool:** run_terminal_cmd ({openai})
**Purpose:** export {token}
**Files involved:** `secrets/{aws}.env`
**Status:** COMPLETED

**Results:**
- {github}
- {password}

```
{key}
```

**CHECKPOINT:** pushed with {pat}

## CHECKPOINT: Keys {hf}
**Status:** ✅ COMPLETE
**Result:** {aws}

## Notes nobody understands
{private}
"""


def test_secrets_in_an_imported_log_are_redacted(project, run_cli) -> None:
    pytest.importorskip("tunix_rt.legacy")
    root = project.root
    outside = root.parent / "M43_toolcalls.md"  # the hand-written log lives outside the project
    outside.write_text(LEGACY_LOG.format(hf=SECRETS["hf"], openai=SECRETS["openai"], token=SECRETS["token assignment"],
                                         aws=SECRETS["aws"], github=SECRETS["github classic"], password=SECRETS["password"],
                                         key=SECRETS["key assignment"], pat=SECRETS["github fine-grained"],
                                         private=PRIVATE_KEY), encoding="utf-8")
    r = run_cli("import", str(outside))
    assert r.code == 0, r
    assert "redacted" in r.err
    assert not files_leaking(root), files_leaking(root)
    # Importing in place: the hand-written original is kept beside the view, and is the user's file.
    r = run_cli("render")
    assert r.code == 0 and not files_leaking(root)


@pytest.fixture
def echo_project(project, tmp_path, monkeypatch, run_cli):
    install_fake_plugin(tmp_path / "site", monkeypatch)
    assert run_cli("start", "M44", "--title", "secrets in runs").code == 0
    (project.root / "notes.txt").write_text("one\ntwo\n", encoding="utf-8")
    return project


def _echo_secret_run(project, run_cli) -> Path:
    root = project.root
    config = root / "echo.yaml"
    config.write_text(f"# {SECRETS['token assignment']}\nmessage: 'deploy {SECRETS['hf']}'\ndata: notes.txt\n", encoding="utf-8")
    r = run_cli("run", "train", "--plugin", "echo", "--config", "echo.yaml")
    assert r.code == 0, r
    return root


def test_secrets_in_run_output_never_reach_the_ledger_or_view(echo_project, run_cli) -> None:
    """The plugin echoes a token into its log, an evidence file, its results and its metrics."""
    root = _echo_secret_run(echo_project, run_cli)
    assert not leaks((root / PHASE / "M44_toolcalls.md").read_bytes()), "the view holds a secret"
    assert not leaks((root / PHASE / "M44.ledger.jsonl").read_bytes()), "the ledger holds a secret"


def test_secrets_in_run_config_output_and_evidence_never_reach_a_commit(echo_project, run_cli) -> None:
    root = _echo_secret_run(echo_project, run_cli)
    assert not leaks((root / PHASE / "M44_toolcalls.md").read_bytes()), "the view holds a secret"
    for entry in json.loads(run_cli("show", "--json").out)["entries"]:
        run_cli("log", "update", str(entry["number"]), "--status", "completed")
    before = git(root, "rev-parse", "HEAD")
    r = run_cli("close", "--skip-hooks")
    if files_leaking(root):  # the config (the user's), the evidence: close must refuse, and say why
        assert r.code == 2, r
        assert "secret" in r.err.lower() or "token" in r.err.lower(), r.err
        assert git(root, "rev-parse", "HEAD") == before
    else:
        assert r.code == 0, r
    assert not history_leaks(root)


def test_secret_in_the_work_blocks_close_and_never_reaches_history(project, run_cli) -> None:
    root = project.root
    assert run_cli("start", "M44", "--title", "work").code == 0
    for i, (kind, value) in enumerate(SECRETS.items()):
        (root / f"work{i}.py").write_text(f"# {kind}\nCONFIG = '{value}'\n", encoding="utf-8")
    (root / "id_rsa").write_text(PRIVATE_KEY + "\n", encoding="utf-8")
    assert run_cli("log", "entry", "-t", "work", "--tool", "write", "-p", "p", "--status", "completed").code == 0
    before = git(root, "rev-parse", "HEAD")
    r = run_cli("close", "--skip-hooks")
    assert r.code == 2, r
    assert git(root, "rev-parse", "HEAD") == before
    assert not history_leaks(root)
    named = r.err
    for i in range(len(SECRETS)):
        assert f"work{i}.py" in named, (i, named)
    assert "id_rsa" in named


# --- templates ---------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ milestone.__class__.__init__.__globals__ }}",
    "{{ milestone.model_config }}{{ milestone.__dict__ }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ status_display.__class__.__base__.__subclasses__() }}",
    "{{ namespace.__init__.__globals__.sys.modules.os.system('touch pwned') }}",
    "{% set x = milestone.model_fields %}{{ x }}{{ ''.format.__globals__ }}",
    "{{ range(10**9) | list | length }}",
    "{{ joiner.__init__.__globals__.os }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_template_escape_attempts_fail_safely(project, run_cli, source: str) -> None:
    assert run_cli("start", "M44", "--title", "sandbox").code == 0
    ledger_before = (project.root / PHASE / "M44.ledger.jsonl").read_bytes()
    (project.root / "templates").mkdir()
    (project.root / "templates" / "toolcalls_header.md.j2").write_text(f"# {{{{ milestone.id }}}}\n{source}\n", encoding="utf-8")
    done = cli(project.root, "render")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr
    view = (project.root / PHASE / "M44_toolcalls.md").read_text(encoding="utf-8")
    for sign in ("<class", "<module", "uid=", "environ", "__globals__", "subclasses"):
        assert sign not in view and sign not in done.stdout, sign
    assert not (project.root / "pwned").exists()
    assert (project.root / PHASE / "M44.ledger.jsonl").read_bytes() == ledger_before


def test_summary_template_escape_at_close_commits_nothing(project, run_cli) -> None:
    assert run_cli("start", "M44", "--title", "sandbox close").code == 0
    (project.root / "templates").mkdir()
    (project.root / "templates" / "summary.md.j2").write_text("{{ milestone.__class__.__init__.__globals__ }}\n", encoding="utf-8")
    head = git(project.root, "rev-parse", "HEAD")
    done = cli(project.root, "close", "--skip-hooks", "--force")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert git(project.root, "rev-parse", "HEAD") == head


# --- evidence paths ------------------------------------------------------------------------------

RUN_IDS = ["../../x", "../x", "..", ".", "/tmp/x", "m44_v1/../../x", "x/../../y", "m44_v1/..", "~/x", "m44_v1\x00", "M44 V1"]


@pytest.mark.parametrize("run_id", RUN_IDS)
def test_run_ids_cannot_escape_the_project(echo_project, run_cli, run_id: str) -> None:
    root = echo_project.root
    (root / "echo.yaml").write_text("message: hi\ndata: notes.txt\n", encoding="utf-8")
    before = sorted(p.as_posix() for p in root.parent.rglob("*") if ".git" not in p.parts and "site" not in p.parts)
    r = run_cli("run", "train", "--plugin", "echo", "--config", "echo.yaml", "--run", run_id)
    assert r.code == 2, r
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    after = sorted(p.as_posix() for p in root.parent.rglob("*") if ".git" not in p.parts and "site" not in p.parts)
    assert after == before


def test_runs_folder_symlinked_outside_is_refused(echo_project, run_cli) -> None:
    root = echo_project.root
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    runs = root / "submission_runs"
    if runs.exists():
        runs.rmdir()
    runs.symlink_to(elsewhere)
    (root / "echo.yaml").write_text("message: hi\ndata: notes.txt\n", encoding="utf-8")
    r = run_cli("run", "train", "--plugin", "echo", "--config", "echo.yaml")
    assert r.code == 2 and "outside the repository" in r.err, r
    assert list(elsewhere.iterdir()) == []


def test_runs_dir_setting_outside_is_refused(echo_project, run_cli) -> None:
    root = echo_project.root
    (root / "milestone.toml").write_text('runs_dir = "../elsewhere"\n', encoding="utf-8")
    (root / "echo.yaml").write_text("message: hi\ndata: notes.txt\n", encoding="utf-8")
    r = run_cli("run", "train", "--plugin", "echo", "--config", "echo.yaml")
    assert r.code == 2 and "outside" in r.err, r
    assert not (root.parent / "elsewhere").exists()
