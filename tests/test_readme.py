"""The README's drifting figures come from `scripts/readme_figures.py`, never from a hand edit."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT


def test_the_readme_figures_are_current() -> None:
    done = subprocess.run([sys.executable, "scripts/readme_figures.py", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
