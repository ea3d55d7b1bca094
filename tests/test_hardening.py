"""Defects of the adversarial pass outside close and render: each input class is refused with one line, never a traceback.

D06/D07 a broken `.git`, D08 a huge --phase, D09 settings that lead outside the repository, D10 a `state.json`
that is not an object, D16 identifiers holding a token, D17/D18 import bounds, D23 a full disk, D28 a blank
--status-text, D29 a refused `start --branch`.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git
from tunix_rt import cli, ledger
from tunix_rt.redact import MARKER

from _support import add_setting

PHASE = "ProjectFiles/Milestones/Phase1"
MILESTONE = str(Path(sys.executable).with_name("milestone"))
TOKEN = "hf_" + "Qw3rTy7UiOp9AsDfGhJkLzXcVbNm12"


def _one_line(result, code: int = 2) -> None:
    assert result.code == code, result
    assert result.err.count("\n") == 1 and result.err.startswith("error: "), result.err


@pytest.mark.parametrize("content", [b"\xff\xfe\x00gitdir", b"gitdir: /nonexistent/where", b"nonsense", b"gitdir: a\x00b"])
@pytest.mark.parametrize("command", [("init",), ("status",), ("list",), ("start", "M01", "--title", "t")])
def test_a_broken_dot_git_file_is_one_line(repo, run_cli, content: bytes, command) -> None:
    """D06, D07: every command says what is wrong with `.git`; init creates nothing."""
    git_dir = repo / ".git"
    os.rename(git_dir, repo.parent / "real-git")
    git_dir.write_bytes(content)
    before = sorted(p.name for p in repo.iterdir())
    _one_line(run_cli(*command))
    assert sorted(p.name for p in repo.iterdir()) == before


@pytest.mark.parametrize("phase", ["9" * 300, "-1", "10000"])
def test_a_phase_out_of_range_is_refused(project, run_cli, phase: str) -> None:
    """D08."""
    _one_line(run_cli("start", "M44", "--title", "t", "--phase", phase))
    assert not any(project.milestones_dir.iterdir())


@pytest.mark.parametrize(
    "setting",
    ['milestones_dir = "../outside"', 'runs_dir = "/tmp/runs"', 'master_doc = "../PROJECT.md"', 'templates_dir = "a/../../b"',
     'master_doc = "C:\\\\x.md"', 'milestones_dir = ""'],
)
def test_settings_that_lead_outside_the_repository_are_refused(repo, run_cli, setting: str) -> None:
    """D09: init (and every command) refuses them before creating anything."""
    (repo / "milestone.toml").write_text(setting + "\n", encoding="utf-8")
    outside = sorted(p.name for p in repo.parent.iterdir())
    _one_line(run_cli("init"))
    assert sorted(p.name for p in repo.parent.iterdir()) == outside
    assert sorted(p.name for p in repo.iterdir()) == [".git", "milestone.toml"]


def test_a_symlinked_folder_leading_outside_is_refused_by_init(repo, run_cli, tmp_path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (repo / "ProjectFiles").symlink_to(tmp_path / "elsewhere")
    _one_line(run_cli("init"))
    assert not any((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize("state", ["[]", '"M44"', "42", "null", '{"current": 7}', '{"current": ["M44"]}', '{"current": {}}'])
def test_a_state_file_that_is_not_an_object_counts_as_no_current_milestone(project, run_cli, state: str) -> None:
    """D10."""
    assert run_cli("start", "M44", "--title", "t").code == 0
    (project.state_dir / "state.json").write_text(state, encoding="utf-8")
    for command in (("status",), ("show",), ("log", "entry", "-t", "a", "--tool", "x", "-p", "y")):
        result = run_cli(*command)
        assert result.code in (0, 2) and "Traceback" not in result.err, (command, result)
    assert run_cli("show", "--milestone", "M44").code == 0


def test_identifiers_are_redacted_like_any_field(project, run_cli, monkeypatch) -> None:
    """D16: a token in an agent session id, a tool-use id or a branch name never reaches the ledger."""
    git(project.root, "checkout", "-q", "-b", f"feature/{TOKEN}")
    assert run_cli("start", "M44", "--title", "t").code == 0
    from tunix_rt import milestones

    milestones.add_entry(project, "M44", title="t", tools=["Bash"], purpose="p", agent_session_id=f"s-{TOKEN}",
                         tool_use_id=f"toolu_{TOKEN}")
    data = (project.root / PHASE / "M44.ledger.jsonl").read_text(encoding="utf-8")
    assert TOKEN not in data and data.count(MARKER) >= 3


def test_import_refuses_a_log_whose_ledger_would_pass_max_file_mb(project, run_cli) -> None:
    """D17: the ledger and view an import writes are held to the limit close applies to them."""
    add_setting(project.root, "max_file_mb = 0.05")
    log = project.root / "M43_toolcalls.md"
    entries = "".join(f"\n## Entry {n}: t\n**Tool**: Bash\n**Purpose**: {'p' * 20}\n**Status**: COMPLETED\n\n---\n" for n in range(1, 300))
    log.write_text("# M43 Tool Calls Log\n" + entries, encoding="utf-8")
    assert log.stat().st_size < 0.05 * 1024 * 1024
    result = run_cli("import", str(log), "--milestone", "M43")
    _one_line(result)
    assert "over max_file_mb" in result.err
    assert not any(project.milestones_dir.iterdir())


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom"])
def test_import_of_an_endless_file_is_bounded(project, run_cli, source: str) -> None:
    """D18: read up to the limit, then refused."""
    add_setting(project.root, "max_file_mb = 1")
    result = run_cli("import", source, "--milestone", "M43")
    _one_line(result)
    assert "larger than" in result.err


def test_a_full_disk_is_one_line_and_leaves_no_truncated_patch(project) -> None:
    """D23: a write that fails part way (here: over RLIMIT_FSIZE, as a full disk would) is exit 1 with one
    line, and start leaves no half-written baseline patch and no ledger."""
    (project.root / "README.md").write_text("# demo\n" + "a change\n" * 5000, encoding="utf-8")

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    done = subprocess.run([MILESTONE, "start", "M44", "--title", "t"], cwd=project.root, capture_output=True, text=True,
                          preexec_fn=small_files, timeout=120)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    phase = project.root / PHASE
    assert not phase.exists() or not list(phase.iterdir()), list(phase.iterdir())


@pytest.mark.parametrize("text", ["   ", "\t\n", ""])
def test_a_blank_status_text_is_refused_not_stored(project, run_cli, text: str) -> None:
    """D28."""
    assert run_cli("start", "M44", "--title", "t").code == 0
    assert run_cli("log", "entry", "-t", "a", "--tool", "x", "-p", "y").code == 0
    assert run_cli("log", "update", "1", "--status-text", "half done").code == 0
    before = (project.root / PHASE / "M44.ledger.jsonl").read_bytes()
    _one_line(run_cli("log", "update", "1", "--status-text", text))
    assert (project.root / PHASE / "M44.ledger.jsonl").read_bytes() == before
    assert ledger.load(project.root / PHASE / "M44.ledger.jsonl").entries[0].status_text == "half done"


def test_a_refused_start_with_branch_leaves_head_where_it_was(project, run_cli) -> None:
    """D29: the start is refused after the branch was made (a broken template); the branch goes too."""
    (project.root / "templates").mkdir()
    (project.root / "templates" / "plan.md.j2").write_text("{{ undefined_name }}\n", encoding="utf-8")
    branches = git(project.root, "branch", "--list")
    _one_line(run_cli("start", "M44", "--title", "t", "--branch"))
    assert git(project.root, "branch", "--show-current").strip() == "main"
    assert git(project.root, "branch", "--list") == branches


def test_cli_run_translates_os_errors(project, monkeypatch, capsys) -> None:
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", "x.tmp")

    monkeypatch.setattr(ledger, "create", full)
    assert cli.run(["start", "M44", "--title", "t"]) == 1
    assert capsys.readouterr().err == "error: No space left on device: x.tmp\n"
    assert json.loads("{}") == {}
