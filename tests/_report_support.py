"""Helpers for the report tests: a project with every kind of milestone the report shows."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _close_support import git, make_run

from tunix_rt import adoption, cli, closing, milestones
from tunix_rt.project import Project

DATA = Path(__file__).resolve().parent / "data"
CHROMIUM = "/usr/bin/chromium"  # the Debian package `chromium`; `playwright install` downloads are not used
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = "<script>alert(1)</script> and <img src=x onerror=alert(2)> and ![pixel](https://example.com/p.png)"


def report_project(project: Project) -> Project:
    """M11 hand-run history imported from its log, M12 closed with a train and an eval run and two thresholds
    (one unmet), M13 open with an entry whose text is hostile HTML."""
    log = project.root / project.settings.milestones_dir / "Phase5" / "M11_toolcalls.md"
    log.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "adoption" / "M11_toolcalls.md", log)
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", "M11: observer model")
    adoption.import_log(project, log)

    milestones.start(project, "M12", "Tiny training run", phase=5,
                     accept=["train.final_loss<=1.0", "eval.primary_score>=0.5"])
    (project.root / "train.py").write_text("print('train')\n", encoding="utf-8")
    milestones.add_entry(project, "M12", title="Write the trainer", tools=["write"], purpose="code",
                         files=["train.py"], status="completed")
    make_run(project, "M12", "m12_v1")
    make_run(project, "M12", "m12_v2", kind="eval")
    closing.close(project, "M12", skip_hooks=True, force=True, summary="Trained a tiny model.")

    milestones.start(project, "M13", "Hostile text", phase=5)
    milestones.add_entry(project, "M13", title="Paste an error", tools=["run_terminal_cmd"], purpose=HOSTILE,
                         status="in-progress", sections=[("Output", HOSTILE)])
    return project


def new_report_project(root: Path) -> Project:
    """`report_project` in a new git repository at `root` (for module-scoped fixtures: built once, copied or read)."""
    root.mkdir(parents=True)
    for args in (("init", "-q", "-b", "main"), ("config", "user.name", "Test Engineer"),
                 ("config", "user.email", "test@example.com"), ("config", "commit.gpgsign", "false")):
        git(root, *args)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("TUNIX_RT_NOW", "2026-01-08T12:00:00Z")
        assert cli.run(["init"]) == 0
        (root / "README.md").write_text("# demo\n", encoding="utf-8")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
        return report_project(Project.find(root))


def copy_project(project: Project, root: Path) -> Project:
    shutil.copytree(project.root, root, symlinks=True)
    return Project.find(root)


@contextlib.contextmanager
def chromium_page(width: int = 1200, height: int = 900) -> Iterator[Any]:
    """A page of a headless Chromium launched as the tests and `scripts/report_screenshot.py` launch it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
