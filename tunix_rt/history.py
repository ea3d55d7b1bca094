"""What a repository already says about its milestones before the tool ran: ids in use, phases, titles, closing commits.

Projects adopt the tool after years of hand-run milestones: `Phase<N>/M44_summary.md`, staging folders such as
`Temp/` full of placeholders, branches like `feat/m1-hardening`, and closing commits `M45: Title - outcome` followed
by `M45: Finalize toolcalls log`. This module reads those traces (files through the file system, git through
`vcs`) and answers the questions `start` and `import` ask; it writes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tunix_rt.ids import canonical_milestone

if TYPE_CHECKING:
    import git

    from tunix_rt.project import Project
    from tunix_rt.vcs import CommitInfo

# `M44_plan.md`, `m6_notes.md`, `M05_COMPLETE.md`, `M44.ledger.jsonl`: an id, then `_` or `.`.
_FILE_ID = re.compile(r"[Mm]([0-9]{1,6})(?=[_.])")
# An id standing alone inside a branch name: `feat/m1-hardening`, `milestone/M29-data`, `m10-refactor`.
_BRANCH_ID = re.compile(r"(?<![A-Za-z0-9])[Mm]([0-9]{1,6})(?![0-9])")
# `M45: Title`, and the conventional-commit scope form `docs(M45): ...`.
_SUBJECT_ID = re.compile(r"\s*[Mm]([0-9]{1,6})\s*:")
_SCOPED_ID = re.compile(r"\s*[a-z]+\(\s*[Mm]([0-9]{1,6})\s*\)!?:")
_PHASE = re.compile(r"Phase([0-9]+)")


def _mid(digits: str) -> str:
    return canonical_milestone(f"M{digits}")


@dataclass(frozen=True)
class Use:
    """One trace of a milestone id: where it is (a path, `branch X` or `commit abc1234 'subject'`) and its phase."""

    milestone: str
    where: str
    phase: int | None = None  # the N of a `Phase<N>` folder holding the file


@dataclass
class IdUses:
    """Every id the repository already uses, with the first trace of each."""

    uses: dict[str, Use] = field(default_factory=dict)

    def add(self, use: Use) -> None:
        self.uses.setdefault(use.milestone, use)

    def next_free(self) -> str:
        """The id after the highest one in use (gaps stay gaps: a skipped number may be planned elsewhere)."""
        highest = max((int(mid[1:]) for mid in self.uses), default=0)
        return canonical_milestone(f"M{highest + 1}")


def milestone_files(project: Project) -> list[tuple[str, Path]]:
    """(id, path) for every `Mnn_*` / `Mnn.*` file or folder anywhere under the milestones folder, sorted by path."""
    root = project.milestones_dir
    found: list[tuple[str, Path]] = []
    if not root.is_dir():
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted([*dirs, *files]):
            match = _FILE_ID.match(name)
            if match:
                found.append((_mid(match.group(1)), Path(folder) / name))
    return sorted(found, key=lambda item: item[1])


def phase_of(project: Project, path: Path) -> int | None:
    """The N of the `Phase<N>` folder directly under the milestones folder that is or holds `path`, if any."""
    try:  # paths from milestone_files() are under the folder as spelled; anything else is compared resolved
        parts = path.relative_to(project.milestones_dir).parts
    except ValueError:
        try:
            parts = path.resolve().relative_to(project.milestones_dir.resolve()).parts
        except ValueError:
            return None
    match = _PHASE.fullmatch(parts[0]) if parts else None
    return int(match.group(1)) if match else None


def file_uses(project: Project, files: list[tuple[str, Path]] | None = None) -> list[Use]:
    listed = milestone_files(project) if files is None else files
    return [Use(mid, project.relative(path), phase_of(project, path)) for mid, path in listed]


def subject_id(subject: str, *, scoped: bool = True) -> str | None:
    """The milestone a commit subject names: `M45: ...` (and `docs(M45): ...` when `scoped`)."""
    match = _SUBJECT_ID.match(subject) or (_SCOPED_ID.match(subject) if scoped else None)
    return _mid(match.group(1)) if match else None


def git_uses(repo: git.Repo) -> list[Use]:
    """Ids in local branch names (the checked-out branch aside) and in commit subjects."""
    from tunix_rt import vcs

    found = []
    here = vcs.current_branch(repo)
    for branch in vcs.local_branches(repo):
        if branch == here:  # the branch made for this very milestone (before `start`, or by `start --branch`)
            continue
        for match in _BRANCH_ID.finditer(branch):
            found.append(Use(_mid(match.group(1)), f"branch {branch}"))
    for commit in vcs.commit_subjects(repo):
        mid = subject_id(commit.subject)
        if mid is not None:
            found.append(Use(mid, f"commit {commit.sha[:7]} {commit.subject[:60]!r}"))
    return found


def id_uses(project: Project, files: list[tuple[str, Path]] | None = None) -> IdUses:
    """Ids used by files under the milestones folder, local branches and commit subjects (files first)."""
    from tunix_rt import vcs

    uses = IdUses()
    for use in file_uses(project, files):
        uses.add(use)
    for use in git_uses(vcs.open_repo(project.root)):
        uses.add(use)
    return uses


def default_phase(project: Project, files: list[tuple[str, Path]] | None = None) -> int:
    """The phase of the highest-numbered milestone found in a `Phase<N>` folder; 1 when there is none."""
    best: tuple[int, int] | None = None
    for use in file_uses(project, files):
        if use.phase is not None:
            key = (int(use.milestone[1:]), use.phase)
            best = key if best is None or key > best else best
    return best[1] if best else 1


# --- a milestone's own documents -------------------------------------------------------------------------------


def find_doc(
    project: Project, milestone_id: str, kind: str, files: list[tuple[str, Path]] | None = None
) -> Path | None:
    """The non-empty `Mnn_<kind>.md` of a milestone anywhere under the milestones folder (a Phase folder first);
    `files` is a `milestone_files()` already read."""
    candidates = []
    for mid, path in milestone_files(project) if files is None else files:
        if mid != milestone_id or not path.is_file() or path.stat().st_size == 0:
            continue
        match = re.fullmatch(r"[Mm][0-9]+_(.+)\.md", path.name)
        if match and match.group(1).lower() == kind:
            candidates.append((phase_of(project, path) is None, str(path), path))
    return min(candidates)[2] if candidates else None


_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)
_DOC_WORDS = re.compile(
    r"^(?:milestone\s+)?(?:completion\s+)?(?:summary|plan|tool[\s-]*calls?\s+log|clarifying\s+questions)?", re.I
)


def title_from_heading(heading: str, milestone_id: str) -> str | None:
    """`M44 Milestone Summary: Title`, `M47 Summary — Title`, `Cursor Handoff Prompt — **M44: Title**` -> Title."""
    text = heading.replace("*", "").replace("`", "")
    for match in re.finditer(r"(?<![A-Za-z0-9])[Mm]([0-9]{1,6})(?![0-9])", text):
        if _mid(match.group(1)) != milestone_id:
            continue
        rest = text[match.end() :].strip()
        rest = _DOC_WORDS.sub("", rest, count=1).strip()
        rest = re.sub(r"^[:—–-]+\s*", "", rest).strip()
        return rest or None
    return None


def title_from_doc(path: Path, milestone_id: str) -> str | None:
    """The title in a summary's or plan's first H1 that names the milestone."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for match in _H1.finditer(text):
        title = title_from_heading(match.group(1), milestone_id)
        if title:
            return title
    return None


def title_from_subject(subject: str) -> str | None:
    """`M45: Curriculum Reasoning Training - research complete` -> `Curriculum Reasoning Training`."""
    _, sep, rest = subject.partition(":")
    title = re.split(r"\s+[-—–]\s+", rest.strip(), maxsplit=1)[0].strip() if sep else ""
    return title or None


# --- closing commits -------------------------------------------------------------------------------------------


@dataclass
class Scan:
    """One read of the milestones folder and of git history, for a use case that asks about many milestones."""

    files: list[tuple[str, Path]]  # milestone_files()
    commits: list[CommitInfo]  # newest first
    touched: dict[str, set[str]]  # SHA -> names of the files it changed under the milestones folder


def scan(project: Project) -> Scan:
    from tunix_rt import vcs

    repo = vcs.open_repo(project.root)
    return Scan(
        files=milestone_files(project),
        commits=vcs.commit_subjects(repo),
        touched=vcs.names_touched(repo, project.settings.milestones_dir),
    )


def closing_commit(seen: Scan, milestone_id: str) -> CommitInfo | None:
    """The commit that closed a hand-run milestone, or None.

    A subject `Mnn: ...`, the last one that touched `Mnn_summary.md` when there are several; when none touched
    it, the oldest (the ones after it are "Finalize toolcalls log" or lint patch-ups). A scoped subject
    `docs(Mnn): ...` counts only when it touched the summary (an implementation commit `feat(Mnn)` closes nothing).
    """
    plain = [c for c in seen.commits if subject_id(c.subject, scoped=False) == milestone_id]
    scoped = [c for c in seen.commits if c not in plain and subject_id(c.subject) == milestone_id]
    if not plain and not scoped:
        return None
    summary = f"{milestone_id}_summary.md"
    touched = {sha for sha, names in seen.touched.items() if summary in names}
    for commit in plain:
        if commit.sha in touched:
            return commit
    if plain:
        return plain[-1]
    for commit in scoped:
        if commit.sha in touched:
            return commit
    return None
