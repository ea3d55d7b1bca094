"""Where things live in a project: the repository root, milestone folders, ledgers, local state.

Found by walking up from the working directory to `.git` (no GitPython here: this module sits on
the `log entry` hot path). Per-clone state (the current milestone, render caches) lives in
`.git/tunix-rt/`, so it never shows up in `git status` or a commit.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tunix_rt.config import Settings, load_settings
from tunix_rt.errors import TunixError
from tunix_rt.ids import canonical_milestone

_PHASE_DIR = re.compile(r"Phase(\d+)")


def _git_dir_of(folder: Path) -> Path | None:
    """The git directory of `folder` (its `.git` folder, or where a `.git` file points), or None."""
    dot_git = folder / ".git"
    if dot_git.is_dir():
        return dot_git
    if not dot_git.is_file():
        return None
    # A worktree or submodule: `gitdir: <path>`. Anything else is a damaged repository, said plainly.
    try:
        text = dot_git.read_bytes()[:4096].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise TunixError(f"{dot_git} is not a readable `gitdir:` file; repair or remove it") from None
    if not text.startswith("gitdir:"):
        raise TunixError(f"{dot_git} has no `gitdir:` line; repair or remove it")
    try:
        git_dir = (folder / text.split(":", 1)[1].strip()).resolve()
        exists = git_dir.is_dir()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise TunixError(f"{dot_git} points to {text.split(':', 1)[1].strip()!r}, which is not a git directory")
    return git_dir


def _find_root(start: Path) -> tuple[Path, Path]:
    for folder in (start, *start.parents):
        git_dir = _git_dir_of(folder)
        if git_dir is not None:
            return folder, git_dir
    raise TunixError(f"{start} is not inside a git repository (run `git init` first)")


def find_git_dir(start: Path) -> Path | None:
    """The git directory above `start`, or None (also for a damaged `.git`, which commands report)."""
    try:
        return _find_root(start.resolve())[1]
    except (TunixError, OSError, ValueError):
        return None


@dataclass
class Project:
    root: Path
    git_dir: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        root, git_dir = _find_root((start or Path.cwd()).resolve())
        return cls(root=root, git_dir=git_dir)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.root)

    # --- paths -----------------------------------------------------------------------------

    @property
    def milestones_dir(self) -> Path:
        return self.root / self.settings.milestones_dir

    @property
    def runs_dir(self) -> Path:
        return self.root / self.settings.runs_dir

    @property
    def state_dir(self) -> Path:
        return self.git_dir / "tunix-rt"

    def relative(self, path: Path) -> str:
        """A path relative to the repository root with '/' separators (how every path is stored)."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    def phase_dir(self, phase: int) -> Path:
        return self.milestones_dir / f"Phase{phase}"

    def phase_dirs(self) -> list[tuple[int, Path]]:
        if not self.milestones_dir.is_dir():
            return []
        found = []
        for child in self.milestones_dir.iterdir():
            match = _PHASE_DIR.fullmatch(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
        return sorted(found)

    def find_ledger(self, milestone_id: str) -> Path | None:
        """The ledger of a milestone in any phase folder, or None."""
        name = f"{milestone_id}.ledger.jsonl"
        for _, folder in self.phase_dirs():
            candidate = folder / name
            if candidate.exists() or candidate.is_symlink():
                return candidate
        return None

    def ledger(self, milestone_id: str) -> Path:
        path = self.find_ledger(milestone_id)
        if path is None:
            raise TunixError(
                f"milestone {milestone_id} does not exist (start it with `milestone start {milestone_id}`)"
            )
        self.check_inside(path)
        return path

    def check_inside(self, path: Path) -> None:
        """Refuses a path (or a symlink) that resolves outside the repository."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise TunixError(f"{self.relative(path)} points outside the repository ({resolved})")

    def all_ledgers(self) -> list[tuple[str, Path]]:
        """(milestone id, ledger path) for every milestone, ordered by number."""
        found = []
        for _, folder in self.phase_dirs():
            for path in folder.glob("M*.ledger.jsonl"):
                found.append((path.name.split(".", 1)[0], path))
        return sorted(found, key=lambda item: int(item[0][1:]))

    def doc_path(self, milestone_id: str, kind: str) -> Path:
        """`M44_<kind>.md` beside the milestone's ledger."""
        return self.ledger(milestone_id).parent / f"{milestone_id}_{kind}.md"

    # --- the current milestone (per clone) -------------------------------------------------

    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    def current_milestone(self) -> str | None:
        """The id in `state.json`; a file that is not an object holding a string counts as none (D10)."""
        try:
            state = json.loads(self._state_file().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        current = state.get("current") if isinstance(state, dict) else None
        return current if isinstance(current, str) else None

    def set_current_milestone(self, milestone_id: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps({"current": milestone_id}) + "\n", encoding="utf-8")
        os.replace(tmp, self._state_file())

    def clear_current_milestone(self) -> None:
        self._state_file().unlink(missing_ok=True)

    def resolve_milestone(self, given: str | None) -> str:
        """`--milestone` when given, else the current milestone; always canonical."""
        if given:
            return canonical_milestone(given)
        current = self.current_milestone()
        if current:
            return current
        raise TunixError("no current milestone: pass --milestone M44 or run `milestone start M44 --title ...`")
