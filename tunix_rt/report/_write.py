"""Phase 3 of the report, write: the pages go into a new folder beside the old report, which then takes its place.

A report that fails half-way leaves the previous one as it was: every page is written into a temporary sibling
folder first, and only a complete folder is renamed into place. The folder marks itself as generated (a
`.gitignore` of `*`, as `.pytest_cache` does), so it is never staged, and a folder without that mark is never
replaced: `--out` pointed at a folder of someone's files refuses instead of deleting them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tunix_rt.errors import TunixError
from tunix_rt.report._draw import Drawn

MARK = ".gitignore"
MARK_TEXT = "# written by `milestone report`: the whole folder is generated and replaced on each run\n*\n"


def _ours(folder: Path) -> bool:
    try:
        return (folder / MARK).read_text(encoding="utf-8") == MARK_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def check_target(out: Path) -> None:
    """Refuses an `--out` that is a file, or a folder with content `milestone report` did not write."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise TunixError(f"{out} exists and is not a folder: pick another --out")
    if out.is_dir() and any(out.iterdir()) and not _ours(out):
        raise TunixError(f"{out} holds files `milestone report` did not write: pick an empty or new --out")


def write(drawn: Drawn, out: Path) -> list[Path]:
    """Writes the pages (UTF-8, LF) and swaps the folder into place; returns the pages' paths."""
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for page in drawn.pages:
            (staging / page.name).write_text(page.html, encoding="utf-8", newline="\n")
        (staging / MARK).write_text(MARK_TEXT, encoding="utf-8", newline="\n")
        staging.chmod(0o755)  # mkdtemp's 0700 would keep the report from whoever else reads the folder
        _replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [out / page.name for page in drawn.pages]


def _replace(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, retired / out.name)  # within one folder: a rename, never a copy
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(retired / out.name, out)  # put the old report back
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)
