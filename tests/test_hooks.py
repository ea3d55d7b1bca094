"""tunix_rt.hooks: pre-commit's report parsed, the fix-then-rerun rule, restore on failure, test-command counts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunix_rt import hooks

REPORT = """\
add a missing final newline..............................................Failed
- hook id: eof-fixer
- exit code: 1
- files were modified by this hook

Fixing a.txt

check yaml...........................................(no files to check)Skipped
always fails.............................................................Failed
- hook id: always-fail
- exit code: 1

refusing b.py
ruff.....................................................................Passed
"""


def test_parse_report() -> None:
    parsed = hooks.parse_report(REPORT)
    assert [(h.name, h.id, h.status, h.modified_files) for h in parsed] == [
        ("add a missing final newline", "eof-fixer", "Failed", True),
        ("check yaml", "check yaml", "Skipped", False),
        ("always fails", "always-fail", "Failed", False),
        ("ruff", "ruff", "Passed", False),
    ]
    assert "refusing b.py" in parsed[2].output


@pytest.mark.parametrize(
    ("output", "counts"),
    [
        ("===== 12 passed, 1 skipped in 0.50s =====", {"passed": 12, "skipped": 1}),
        ("3 failed, 40 passed, 2 errors in 9s", {"failed": 3, "passed": 40, "errors": 2}),
        ("no summary here", {}),
    ],
)
def test_parse_counts(output: str, counts: dict[str, int]) -> None:
    assert hooks.parse_counts(output) == counts


@pytest.fixture
def gitrepo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    return tmp_path


def _config(root: Path, entry: str, hook_id: str = "h") -> None:
    (root / hooks.CONFIG).write_text(
        "repos:\n  - repo: local\n    hooks:\n"
        f"      - id: {hook_id}\n        name: {hook_id}\n        language: system\n"
        f"        entry: {sys.executable} -c \"{entry}\"\n        types: [text]\n",
        encoding="utf-8",
    )


FIXER = ("import sys; bad=[p for p in sys.argv[1:] if open(p,'rb').read()[-1:] != b'\\\\n'];"
         " [open(p,'ab').write(b'\\\\n') for p in bad]; sys.exit(1 if bad else 0)")


def test_a_fixer_fails_once_then_passes_on_the_rerun(gitrepo: Path) -> None:
    _config(gitrepo, FIXER, "eof")
    (gitrepo / "a.txt").write_text("x", encoding="utf-8")
    (gitrepo / "b.txt").write_text("y\n", encoding="utf-8")
    result = hooks.run_hooks(gitrepo, ["a.txt", "b.txt"])
    assert result.ran and result.passed and len(result.runs) == 2
    assert result.modified == ["a.txt"]
    assert (gitrepo / "a.txt").read_text() == "x\n"
    assert result.counts() == {"Passed": 1, "Failed": 0, "Skipped": 0}


def test_a_hook_that_keeps_failing_restores_nothing_and_keeps_the_bytes_from_before(gitrepo: Path) -> None:
    # Rewrites the file on every run and always fails: the rerun fails too. Nothing is put back (the
    # file may hold the user's own edit made meanwhile); the bytes from before are kept aside.
    _config(gitrepo, "import sys; [open(p,'ab').write(b'z') for p in sys.argv[1:]]; sys.exit(1)", "scribble")
    (gitrepo / "a.txt").write_text("x\n", encoding="utf-8")
    keep = gitrepo / ".git" / "tunix-rt" / "before-hooks"
    result = hooks.run_hooks(gitrepo, ["a.txt"], keep=keep)
    assert not result.passed and len(result.runs) == 2
    assert [h.id for h in result.failing()] == ["scribble"]
    assert (gitrepo / "a.txt").read_text() == "x\nzz"
    assert (keep / "a.txt").read_text() == "x\n"


def test_a_hanging_command_is_killed_with_its_children_at_the_time_limit(tmp_path: Path) -> None:
    # The child keeps the output pipe open: killing only the shell would leave close waiting forever.
    started = time.monotonic()
    result = hooks.run_command(tmp_path, f"{sys.executable} -c \"import time; print('started', flush=True); "
                                         f"time.sleep(300)\" & wait", timeout=2)
    assert time.monotonic() - started < 60
    assert result.returncode == 124 and not result.passed
    assert "started" in result.output and "time limit of 2 s" in result.output


def test_tail_shows_the_last_lines_and_pre_commits_own_log(tmp_path: Path) -> None:
    log = tmp_path / "pre-commit.log"
    log.write_text("### version information\nAn unexpected error has occurred: CalledProcessError\n", encoding="utf-8")
    output = "\n".join(f"line {i}" for i in range(50)) + f"\nCheck the log at {log}\n"
    shown = hooks.tail(output, 20)
    assert shown[0] == "line 31" and shown[19] == f"Check the log at {log}"
    assert shown[-1] == f"[{log}] An unexpected error has occurred: CalledProcessError"


def test_no_config_or_no_files_means_not_run(gitrepo: Path) -> None:
    assert hooks.run_hooks(gitrepo, ["a.txt"]).skipped_reason == f"no {hooks.CONFIG}"
    _config(gitrepo, "pass")
    result = hooks.run_hooks(gitrepo, ["missing.txt"])
    assert not result.ran and result.passed and result.skipped_reason == "no files to check"


def test_run_command_captures_utf8_with_lf(tmp_path: Path) -> None:
    result = hooks.run_command(tmp_path, f"{sys.executable} -c \"import sys; sys.stdout.buffer.write('2 passed ✅\\r\\n'.encode())\"")
    assert result.passed and result.output == "2 passed ✅\n" and result.counts == {"passed": 2}
    failed = hooks.run_command(tmp_path, f"{sys.executable} -c \"raise SystemExit(3)\"")
    assert failed.returncode == 3 and not failed.passed


@pytest.mark.slow
def test_real_end_of_file_fixer_from_pre_commit_hooks(gitrepo: Path, tmp_path_factory: pytest.TempPathFactory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`language: python` + pre-commit-hooks==5.0.0 from PyPI (needs PyPI the first time)."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path_factory.getbasetemp() / "pre-commit-home"))
    (gitrepo / hooks.CONFIG).write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: end-of-file-fixer\n        name: fix end of files\n"
        "        language: python\n        entry: end-of-file-fixer\n        types: [text]\n"
        "        additional_dependencies: [pre-commit-hooks==5.0.0]\n",
        encoding="utf-8",
    )
    (gitrepo / "a.txt").write_text("x", encoding="utf-8")
    result = hooks.run_hooks(gitrepo, ["a.txt"])
    if not result.runs or "CalledProcessError" in result.runs[0].output:
        pytest.skip("could not build the hook environment (no PyPI?)")
    assert result.passed and result.modified == ["a.txt"] and (gitrepo / "a.txt").read_text() == "x\n"
