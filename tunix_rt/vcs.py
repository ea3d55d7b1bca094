"""The only module that imports git (GitPython): baseline, branches, diffstat, staging, commit, guards."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import git

from tunix_rt.errors import TunixError


def open_repo(root: Path) -> git.Repo:
    try:
        return git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise TunixError(f"{root} is not a git repository") from exc


@dataclass
class RepoState:
    sha: str | None
    branch: str | None
    dirty_files: list[str] = field(default_factory=list)
    diff_patch: str = ""


def head_sha(repo: git.Repo) -> str | None:
    try:
        return repo.head.commit.hexsha
    except ValueError:  # an empty repository has no HEAD commit yet
        return None


def current_branch(repo: git.Repo) -> str | None:
    try:
        return repo.active_branch.name
    except TypeError:  # detached HEAD
        return None


def repo_state(repo: git.Repo) -> RepoState:
    """HEAD, branch, dirty files (tracked changes and untracked non-ignored files) and `git diff HEAD`."""
    sha = head_sha(repo)
    porcelain = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all")
    dirty: list[str] = []
    records = porcelain.split("\0")
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if not record:
            continue
        dirty.append(record[3:])
        if record[0] in "RC":  # renames carry the old path as the next record
            i += 1
    patch = repo.git.diff("HEAD", "--binary") if sha else ""
    return RepoState(sha=sha, branch=current_branch(repo), dirty_files=sorted(dirty), diff_patch=patch)


def local_branches(repo: git.Repo) -> list[str]:
    return [head.name for head in repo.heads]


def paths_on_branch(repo: git.Repo, branch: str, folder: str) -> list[str]:
    """Files under `folder` in the tree of `branch` (used to refuse ids that exist elsewhere)."""
    out = repo.git.ls_tree("-r", "--name-only", branch, "--", folder)
    return [line for line in out.splitlines() if line]


def create_branch(repo: git.Repo, name: str) -> None:
    if name in local_branches(repo):
        raise TunixError(f"branch {name} already exists")
    # In an empty repository this makes the unborn branch current, which is what a first commit wants.
    repo.git.checkout("-b", name)


def trailer_commit(repo: git.Repo, milestone_id: str) -> str | None:
    """The newest commit carrying the trailer `Milestone: <id>`, on any local branch; None if none."""
    if head_sha(repo) is None:
        return None
    out = repo.git.log("--branches", "--format=%H", "-E", f"--grep=^Milestone: {milestone_id}$")
    lines = out.split()
    return lines[0] if lines else None


def is_dirty(repo: git.Repo) -> bool:
    """Uncommitted changes to tracked files, or untracked files that are not ignored."""
    return repo.is_dirty(untracked_files=True)


def ignored_paths(repo: git.Repo, paths: list[str]) -> set[str]:
    """The subset of `paths` (relative to the root, '/') that git ignores; tracked files never are."""
    if not paths:
        return set()
    # Exit status 1 means "none of them is ignored": not an error here.
    status, out, err = repo.git.check_ignore(*paths, with_extended_output=True, with_exceptions=False)
    if status not in (0, 1):
        raise TunixError(f"git check-ignore failed: {err.strip()}")
    return {line for line in out.splitlines() if line}
