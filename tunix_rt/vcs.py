"""The only module that imports git (GitPython): baseline, branches, diffstat, staging, commit, guards."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def new_branch(repo: git.Repo, name: str) -> Iterator[None]:
    """Creates and checks out `name` for the block; if the block fails, HEAD goes back to where it was
    and the branch is removed, so a refused command leaves no branch behind."""
    if name in local_branches(repo):
        raise TunixError(f"branch {name} already exists")
    try:
        previous: str | None = repo.git.symbolic_ref("-q", "HEAD")  # refs/heads/main, also when unborn
    except git.GitCommandError:
        previous = None  # a detached HEAD
    sha = head_sha(repo)
    repo.git.checkout("-b", name)
    try:
        yield
    except BaseException:
        if previous is None:
            repo.git.checkout("--detach", sha)
        elif sha is None:
            repo.git.symbolic_ref("HEAD", previous)
        else:
            repo.git.checkout(previous.removeprefix("refs/heads/"))
        if sha is not None:
            repo.git.branch("-D", name)
        raise


def trailer_commit(repo: git.Repo, milestone_id: str) -> str | None:
    """The newest commit carrying the trailer `Milestone: <id>`, on any local branch; None if none."""
    if head_sha(repo) is None:
        return None
    # HEAD too: a milestone closed on a detached HEAD has its commit on no branch.
    out = repo.git.log("HEAD", "--branches", "--format=%H", "-E", f"--grep=^Milestone: {milestone_id}$")
    lines = out.split()
    return lines[0] if lines else None


def trailer_value(repo: git.Repo, commit: str, key: str) -> str | None:
    """The value of `key: value` in a commit's message (the last one when it repeats); None if absent. Any
    line counts, not only the last paragraph: a squash merge's message may carry the trailer mid-way."""
    message = repo.git.log("-1", "--format=%B", commit)
    values = [line.split(":", 1)[1].strip() for line in message.splitlines() if line.startswith(f"{key}:")]
    return values[-1] if values else None


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


# --- close: exact diffstat, ignore rules, LFS, and the one all-or-nothing commit ---------------------
# (appended for `milestone close`; the close use case lives in closing.py)

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known empty tree: the "baseline" of an empty repo
_ZERO_SHA = "0" * 40


@dataclass
class FileStat:
    """One changed path since the baseline; insertions/deletions are None for a binary file (git's '-')."""

    path: str
    insertions: int | None
    deletions: int | None
    change: str  # "added", "modified", "deleted" or "untracked"


def is_binary_bytes(data: bytes) -> bool:
    """git's own test: a NUL byte in the first 8000 bytes."""
    return b"\0" in data[:8000]


def count_lines(data: bytes) -> int:
    """Lines as git's numstat counts them for a new file (a last line without a newline counts)."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def changed_since(repo: git.Repo, baseline: str | None) -> list[FileStat]:
    """Tracked changes (work tree against the baseline, renames off) plus untracked non-ignored files.

    Exact by construction: the same numbers `git diff --numstat <baseline>` prints, with untracked
    files counted as git counts a new file once it is added.
    """
    base = baseline or EMPTY_TREE
    try:
        numstat = repo.git.diff(base, "--numstat", "-z", "--no-renames", "--no-ext-diff", "--")
        status = repo.git.diff(base, "--name-status", "-z", "--no-renames", "--no-ext-diff", "--")
    except git.GitCommandError as exc:
        raise TunixError(f"cannot diff against the baseline {base[:12]}: {exc.stderr.strip()}") from exc
    changes: dict[str, str] = {}
    fields = status.split("\0")
    for i in range(0, len(fields) - 1, 2):
        letter, path = fields[i], fields[i + 1]
        if letter:
            changes[path] = {"A": "added", "D": "deleted"}.get(letter[0], "modified")
    stats: list[FileStat] = []
    for record in numstat.split("\0"):
        if not record:
            continue
        ins, dels, path = record.split("\t", 2)
        stats.append(
            FileStat(
                path=path,
                insertions=None if ins == "-" else int(ins),
                deletions=None if dels == "-" else int(dels),
                change=changes.get(path, "modified"),
            )
        )
    root = Path(str(repo.working_tree_dir))
    for path in repo.git.ls_files("--others", "--exclude-standard", "-z").split("\0"):
        if not path:
            continue
        try:
            data = (root / path).read_bytes()
        except OSError:
            continue  # vanished, or a socket/fifo: nothing git would commit
        binary = is_binary_bytes(data)
        stats.append(
            FileStat(
                path=path,
                insertions=None if binary else count_lines(data),
                deletions=None if binary else 0,
                change="untracked",
            )
        )
    return sorted(stats, key=lambda s: s.path)


def file_patch(repo: git.Repo, baseline: str | None, path: str) -> str:
    """`git diff <baseline> --binary -- path` (compared with the patch recorded at start)."""
    return repo.git.diff(baseline or EMPTY_TREE, "--binary", "--no-ext-diff", "--", path)


def blob_text(repo: git.Repo, commit: str | None, path: str) -> bytes | None:
    """A file's bytes in `commit`, or None when it does not exist there."""
    if commit is None:
        return None
    status, out, _ = repo.git.cat_file(
        "blob", f"{commit}:{path}", with_extended_output=True, with_exceptions=False,
        strip_newline_in_stdout=False, stdout_as_string=False,
    )
    return out if status == 0 else None


def numstat_text(old: bytes, new: bytes) -> tuple[int | None, int | None]:
    """git's numstat between two contents (used for documents not yet written, e.g. in --dry-run)."""
    if old == new:
        return 0, 0
    if is_binary_bytes(old) or is_binary_bytes(new):
        return None, None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tunix-rt-numstat-") as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        a.write_bytes(old)
        b.write_bytes(new)
        status, out, err = git.Git(tmp).execute(
            ["git", "diff", "--no-index", "--numstat", "--no-ext-diff", "a", "b"],
            with_extended_output=True,
            with_exceptions=False,
        )
    if status not in (0, 1) or not out.strip():
        raise TunixError(f"git diff --no-index failed: {err.strip()}")
    ins, dels, _ = out.split("\t", 2)
    return (None, None) if ins == "-" else (int(ins), int(dels))


@dataclass
class IgnoreRule:
    """Why git ignores a path: the ignore file, its line number and the pattern (`git check-ignore -v`)."""

    path: str
    source: str
    line: int
    pattern: str


def ignore_rules(repo: git.Repo, paths: list[str]) -> dict[str, IgnoreRule]:
    """For each ignored path of `paths`, the rule that ignores it; tracked files are never ignored."""
    import re

    found: dict[str, IgnoreRule] = {}
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        status, out, err = repo.git.execute(
            ["git", "-c", "core.quotePath=false", "check-ignore", "-v", "--", *chunk],
            with_extended_output=True,
            with_exceptions=False,
        )
        if status not in (0, 1):
            raise TunixError(f"git check-ignore failed: {err.strip()}")
        for record in out.splitlines():
            head, _, path = record.partition("\t")
            match = re.match(r"^(.*?):(\d+):(.*)$", head)
            if not match or match.group(3).startswith("!"):  # -v also reports a negated (re-including) match
                continue
            found[path] = IgnoreRule(path=path, source=match.group(1), line=int(match.group(2)), pattern=match.group(3))
    return found


def clean_filtered(repo: git.Repo, paths: list[str]) -> set[str]:
    """The subset of `paths` that git passes through a configured clean filter (LFS when installed): their
    committed blob is what the filter makes of them, so only the staged blob can be sized."""
    found: set[str] = set()
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        fields = repo.git.check_attr("-z", "filter", "--", *chunk).split("\0")
        for i in range(0, len(fields) - 2, 3):
            name = fields[i + 2]
            if name in ("unspecified", "unset", "set", ""):
                continue
            if config_value(repo, f"filter.{name}.clean"):
                found.add(fields[i])
    return found


def tag_exists(repo: git.Repo, name: str) -> bool:
    status, _, _ = repo.git.rev_parse(
        "--verify", "--quiet", f"refs/tags/{name}", with_extended_output=True, with_exceptions=False
    )
    return status == 0


def identity_problem(repo: git.Repo) -> str | None:
    """Why a commit would fail for lack of an author identity, or None."""
    status, _, err = repo.git.var("GIT_AUTHOR_IDENT", with_extended_output=True, with_exceptions=False)
    if status != 0:
        detail = err.strip().splitlines()[-1] if err.strip() else "user.name/user.email unset"
        return f"git has no author identity ({detail})"
    status, _, err = repo.git.var("GIT_COMMITTER_IDENT", with_extended_output=True, with_exceptions=False)
    if status != 0:
        return "git has no committer identity (set user.name and user.email)"
    return None


def _close_files(repo: git.Repo) -> tuple[Path, Path, Path]:
    git_dir = Path(repo.git_dir)
    state = git_dir / "tunix-rt"
    return git_dir / "index.lock", state / "close.index", state / "close.pid"


def clear_stale_close_lock(repo: git.Repo) -> None:
    """Removes an index lock left by a `close` that was killed (its pid file names a dead process)."""
    import os

    lock, tmp_index, pid_file = _close_files(repo)
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 0)
        return  # still running: its lock is real
    except ProcessLookupError:
        pass
    except PermissionError:
        return
    # Killed after moving HEAD but before updating the user's index: the private index is exactly the
    # new commit's tree. The committed paths (still listed in the .paths file) are reset in the user's
    # index to the commit, which finishes the step and keeps whatever else the user had staged.
    spec = tmp_index.with_suffix(".paths")
    finish = False
    if tmp_index.exists() and head_sha(repo) is not None:
        tree = repo.git.write_tree(env={"GIT_INDEX_FILE": str(tmp_index)}, with_exceptions=False).strip()
        finish = bool(tree) and tree == repo.git.rev_parse("HEAD^{tree}").strip()
    lock.unlink(missing_ok=True)
    if finish and spec.exists():
        repo.git.reset("-q", "HEAD", f"--pathspec-from-file={spec}", "--pathspec-file-nul",
                       env={"GIT_LITERAL_PATHSPECS": "1"}, with_exceptions=False)
    elif finish:
        os.replace(tmp_index, Path(repo.git_dir) / "index")
    for path in (tmp_index, pid_file, spec, tmp_index.with_suffix(".user")):
        path.unlink(missing_ok=True)


# States in which git itself would not make a plain commit: close refuses them up front.
_OPERATIONS = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or `git am`"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
    ("BISECT_LOG", "a bisect"),
)


def operation_in_progress(repo: git.Repo) -> str | None:
    """Why a commit now would be wrong: an unfinished merge/rebase/cherry-pick/revert/bisect, or unmerged paths."""
    git_dir = Path(repo.git_dir)
    for name, what in _OPERATIONS:
        if (git_dir / name).exists():
            return f"{what} is in progress (finish or abort it first)"
    unmerged = sorted({line.split("\t", 1)[1] for line in repo.git.ls_files("-u").splitlines() if "\t" in line})
    if unmerged:
        shown = ", ".join(unmerged[:5]) + (f" and {len(unmerged) - 5} more" if len(unmerged) > 5 else "")
        return f"unresolved conflicts in {shown} (resolve and `git add` them first)"
    return None


def config_value(repo: git.Repo, key: str, *, as_bool: bool = False) -> str | None:
    """A git config value as git reads it (every scope); None when unset or empty."""
    args = (["--bool"] if as_bool else []) + ["--get", key]
    status, out, _ = repo.git.config(*args, with_extended_output=True, with_exceptions=False)
    return out.strip() if status == 0 and out.strip() else None


def signing_requested(repo: git.Repo) -> bool:
    """`commit.gpgSign` as git reads it: close signs whenever `git commit` would."""
    return config_value(repo, "commit.gpgsign", as_bool=True) == "true"


@dataclass(frozen=True)
class StagedBlob:
    """One file exactly as the commit will hold it (after git's clean filters, LFS included)."""

    path: str
    sha: str
    size: int
    data: bytes


def _staged_blobs(repo: git.Repo, env: dict[str, str], paths: list[str]) -> list[StagedBlob]:
    wanted = set(paths)
    entries = []
    for record in repo.git.ls_files("-s", "-z", env=env).split("\0"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        mode, sha, _ = meta.split()
        if path in wanted and mode != "160000":  # submodules hold no bytes of their own
            entries.append((path, sha))
    blobs = []
    for path, sha in entries:
        data = repo.odb.stream(bytes.fromhex(sha)).read()
        blobs.append(StagedBlob(path, sha, len(data), data))
    return blobs


def commit_paths(
    repo: git.Repo,
    paths: list[str],
    message: str,
    *,
    tag: str | None = None,
    inspect: Callable[[list[StagedBlob]], None] | None = None,
) -> str:
    """Stages exactly `paths` (additions, changes, deletions, on top of HEAD) and makes one commit; all or nothing.

    Works on a private index built from HEAD's tree (never a copy of the user's index: a file the user
    staged for another reason must not ride along) while holding `.git/index.lock`. `inspect` sees the
    exact blobs the commit will hold and may raise to refuse it (the secret and size gate). Then the
    tree and the commit object (signed when `commit.gpgSign` asks for it), HEAD's branch moved with a
    compare-and-swap `update-ref`, the annotated tag, and last the user's index updated for exactly
    these paths, keeping everything else it had staged. Any failure before HEAD moves leaves HEAD,
    the index and the refs as they were. Git's own commit hooks do not run; `close` runs pre-commit.
    """
    import os
    import shutil

    lock, tmp_index, pid_file = _close_files(repo)
    tmp_index.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_close_lock(repo)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError as exc:
        raise TunixError(f"{lock} exists: another git process is running (or crashed); remove it when none is") from exc
    os.close(fd)
    pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    real_index = Path(repo.git_dir) / "index"
    user_index = tmp_index.with_suffix(".user")
    parent = head_sha(repo)
    moved = False
    try:
        env = {"GIT_INDEX_FILE": str(tmp_index), "GIT_LITERAL_PATHSPECS": "1"}
        tmp_index.unlink(missing_ok=True)
        if parent:
            repo.git.read_tree(parent, env=env)
        spec = tmp_index.with_suffix(".paths")
        spec.write_bytes(b"".join(p.encode("utf-8") + b"\0" for p in paths))
        try:
            repo.git.add("-A", f"--pathspec-from-file={spec}", "--pathspec-file-nul", env=env)
            if inspect is not None:
                inspect(_staged_blobs(repo, env, paths))
            tree = repo.git.write_tree(env=env).strip()
            msg_file = tmp_index.with_suffix(".msg")
            msg_file.write_text(message, encoding="utf-8")
            try:
                sign = ["-S"] if signing_requested(repo) else []
                args = [tree] + (["-p", parent] if parent else []) + sign + ["-F", str(msg_file)]
                commit = repo.git.commit_tree(*args).strip()
            finally:
                msg_file.unlink(missing_ok=True)
            subject = message.splitlines()[0]
            reflog = f"commit{'' if parent else ' (initial)'}: {subject}"
            repo.git.update_ref("-m", reflog, "HEAD", commit, parent or _ZERO_SHA)
            moved = True
            if tag:
                repo.git.tag("-a", tag, "-m", subject, commit)
            # The user's index: what it had, with exactly the committed paths set to the commit's blobs.
            if real_index.exists():
                shutil.copyfile(real_index, user_index)
                user_env = {"GIT_INDEX_FILE": str(user_index), "GIT_LITERAL_PATHSPECS": "1"}
                repo.git.reset("-q", commit, f"--pathspec-from-file={spec}", "--pathspec-file-nul", env=user_env)
                os.replace(user_index, real_index)
            else:
                os.replace(tmp_index, real_index)
        finally:
            spec.unlink(missing_ok=True)
        return commit
    except Exception as exc:
        if moved:  # put the branch back where it was
            if parent:
                repo.git.update_ref("HEAD", parent, with_exceptions=False)
            else:
                repo.git.update_ref("-d", "HEAD", with_exceptions=False)
        if isinstance(exc, git.GitCommandError):
            from tunix_rt.errors import WorkFailed

            detail = (exc.stderr or "").strip().splitlines()
            what = exc.command[1] if len(exc.command) > 1 else "command"
            raise WorkFailed(f"git {what} failed: {detail[-1] if detail else exc}") from exc
        raise
    finally:
        tmp_index.unlink(missing_ok=True)
        user_index.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


# --- adoption: what the history of a repository says about its milestones ---------------------------


@dataclass(frozen=True)
class CommitInfo:
    """One commit as history import reads it: full SHA, committer time in UTC ISO 8601, subject line."""

    sha: str
    time: str
    subject: str


def commit_subjects(repo: git.Repo) -> list[CommitInfo]:
    """Every commit reachable from HEAD or a local branch, newest first."""
    if head_sha(repo) is None:
        return []
    out = repo.git.log("HEAD", "--branches", "--format=%H%x1f%ct%x1f%s%x1e")
    return [_commit_info(record) for record in out.split("\x1e") if record.strip()]


def _commit_info(record: str) -> CommitInfo:
    from datetime import datetime, timezone

    sha, stamp, subject = record.strip("\n").split("\x1f", 2)
    time = datetime.fromtimestamp(int(stamp), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CommitInfo(sha=sha, time=time, subject=subject)


def names_touched(repo: git.Repo, folder: str) -> dict[str, set[str]]:
    """Per commit (from HEAD or a local branch) changing something under `folder`: the names of the files it changed."""
    if head_sha(repo) is None:
        return {}
    out = repo.git.log("HEAD", "--branches", "--format=%x1e%H", "--name-only", "--no-renames", "--", folder or ".")
    touched: dict[str, set[str]] = {}
    for record in out.split("\x1e"):
        lines = [line for line in record.splitlines() if line.strip()]
        if lines:
            touched[lines[0]] = {line.rsplit("/", 1)[-1] for line in lines[1:]}
    return touched


def is_tracked(repo: git.Repo, path: str) -> bool:
    """Whether `path` (relative to the root, '/') is in the index."""
    return bool(repo.git.ls_files("--", path).strip())


def commits_mentioning(repo: git.Repo, milestone_id: str) -> list[CommitInfo]:
    """Commits whose message carries the trailer `Milestone: <id>` (what close writes)."""
    if head_sha(repo) is None:
        return []
    out = repo.git.log(
        "HEAD", "--branches", "-E", f"--grep=^Milestone: {milestone_id}$", "--format=%H%x1f%ct%x1f%s%x1e"
    )
    return [_commit_info(record) for record in out.split("\x1e") if record.strip()]


def commits_since(repo: git.Repo, baseline: str | None) -> list[CommitInfo]:
    """Commits on HEAD after `baseline`, newest first (all of HEAD's history when there was no baseline)."""
    if head_sha(repo) is None:
        return []
    spec = f"{baseline}..HEAD" if baseline else "HEAD"
    out = repo.git.log(spec, "--format=%H%x1f%ct%x1f%s%x1e")
    return [_commit_info(record) for record in out.split("\x1e") if record.strip()]
