"""Shared fixtures: a temporary git repository with an identity, pinned time, and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunix_rt import cli
from tunix_rt.project import Project

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# Real files of the hand-run project this tool was built for; they sit beside the checkout (`../shared`), not in
# it, so a fresh clone skips the tests that read them and the summary line says how many (see the README).
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "tunix-rt"
NEEDS_SHARED = "needs ../shared/corpus beside this checkout"
NEEDS_SHARED_CATEGORY = "skipped (need ../shared)"
MILESTONE = [sys.executable, "-m", "tunix_rt.cli"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository with an identity, as the working directory."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test Engineer")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    monkeypatch.chdir(root)
    monkeypatch.setenv("TUNIX_RT_NOW", "2026-01-08T12:00:00Z")
    return root


@pytest.fixture
def project(repo: Path) -> Project:
    """A git repository after `milestone init`, with one commit so there is a baseline."""
    assert cli.run(["init"]) == 0
    (repo / "README.md").write_text("# demo\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return Project.find(repo)


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Runs `milestone ARGS` in-process through the same translation point as the console script."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = cli.run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def run_subprocess(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*MILESTONE, *args], cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """A test skipped for want of ../shared counts under its own name in pytest's summary line
    (`… passed, N skipped (need ../shared)`), so a fresh clone's run says why it ran fewer tests."""
    if report.skipped and isinstance(report.longrepr, tuple) and NEEDS_SHARED in str(report.longrepr[2]):
        return NEEDS_SHARED_CATEGORY, "s", ("SKIPPED", {"yellow": True})
    return None
