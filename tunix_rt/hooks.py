"""Subprocesses for `close`'s quality gates: the project's pre-commit hooks and its test command.

Output is captured as UTF-8 with LF line ends (never the console's code page), so it can be quoted
in an error message or a summary as is. Hooks run on an explicit file list (`pre-commit run
--files`), which neither stashes unstaged changes nor needs anything staged. Every subprocess runs
in its own process group under a time limit (`close.timeout_s`): on expiry the whole group is
killed, so a hook that spawned a server or hangs on input cannot hang `close`.

A failed hook run restores nothing: what a fixer rewrote stays, as with `git commit`, because a
file that changed while hooks ran may hold the user's own edit. The bytes from before the hooks
are kept under `.git/tunix-rt/before-hooks/` so nothing is lost either way.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CONFIG = ".pre-commit-config.yaml"

# `check-yaml..........................................(no files to check)Skipped`
_HOOK_LINE = re.compile(r"^(?P<name>.+?)\.{2,}(?:\((?P<note>[^)]*)\))?(?P<status>Passed|Failed|Skipped)$")
_HOOK_ID = re.compile(r"^- hook id: (?P<id>\S+)$")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b")


@dataclass
class Hook:
    """One hook's line in pre-commit's report."""

    name: str
    id: str
    status: str  # "Passed", "Failed" or "Skipped"
    modified_files: bool = False
    output: str = ""


@dataclass
class HookRun:
    """One `pre-commit run --files ...` invocation."""

    returncode: int
    output: str
    hooks: list[Hook] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)  # files whose bytes the hooks changed

    @property
    def passed(self) -> bool:
        return self.returncode == 0


@dataclass
class HooksResult:
    """The outcome `close` reports: which hooks ran, how often, what they rewrote."""

    ran: bool
    skipped_reason: str = ""  # why they did not run: --skip-hooks, no config, no files, dry run
    runs: list[HookRun] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.ran or (bool(self.runs) and self.runs[-1].passed)

    @property
    def final(self) -> HookRun | None:
        return self.runs[-1] if self.runs else None

    @property
    def modified(self) -> list[str]:
        return sorted({path for run in self.runs for path in run.modified})

    def counts(self) -> dict[str, int]:
        final = self.final
        tally = {"Passed": 0, "Failed": 0, "Skipped": 0}
        for hook in final.hooks if final else []:
            tally[hook.status] = tally.get(hook.status, 0) + 1
        return tally

    def failing(self) -> list[Hook]:
        return [hook for hook in (self.final.hooks if self.final else []) if hook.status == "Failed"]


@dataclass
class CommandResult:
    """The optional `close.test_command`: its exit status, its output and the counts it printed."""

    command: str
    returncode: int
    output: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def has_config(root: Path) -> bool:
    return (root / CONFIG).is_file()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def parse_report(output: str) -> list[Hook]:
    """The hooks pre-commit reported, with the id and the output block under each."""
    hooks: list[Hook] = []
    for line in output.split("\n"):
        match = _HOOK_LINE.match(line.rstrip())
        if match:
            name = match.group("name").strip()
            hooks.append(Hook(name=name, id=name, status=match.group("status")))
            continue
        if not hooks:
            continue
        current = hooks[-1]
        id_match = _HOOK_ID.match(line.strip())
        if id_match:
            current.id = id_match.group("id")
        elif line.strip() == "- files were modified by this hook":
            current.modified_files = True
        current.output += line + "\n"
    for hook in hooks:
        hook.output = hook.output.strip("\n")
    return hooks


def _run(cmd: list[str] | str, root: Path, env: dict[str, str], timeout: float | None) -> tuple[int, str]:
    """Runs `cmd` in its own process group; on timeout kills the group and returns 124 with what it printed."""
    posix = hasattr(os, "killpg")
    try:
        proc = subprocess.Popen(cmd, cwd=root, env=env, shell=isinstance(cmd, str), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=posix)
    except OSError as exc:
        return 127, f"cannot run {cmd if isinstance(cmd, str) else cmd[0]}: {exc.strerror}"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if posix:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            proc.kill()
        out, _ = proc.communicate()
        return 124, _text(out or b"") + f"\n(stopped after the time limit of {timeout:g} s: close.timeout_s)\n"
    return proc.returncode, _text(out)


def run_precommit(root: Path, files: list[str], *, timeout: float | None = None) -> HookRun:
    """Runs every configured hook on `files` once; notes which of them the hooks rewrote."""
    before = {path: _digest(root / path) for path in files}
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUTF8="1", NO_COLOR="1")
    cmd = [sys.executable, "-m", "pre_commit", "run", "--color", "never", "--files", *files]
    returncode, output = _run(cmd, root, env, timeout)
    modified = [path for path in files if _digest(root / path) != before[path]]
    return HookRun(returncode=returncode, output=output, hooks=parse_report(output), modified=modified)


def keep_copies(root: Path, files: list[str], folder: Path) -> None:
    """The bytes of each file before the hooks ran, under `folder` (replacing the previous close's copies)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    for path in files:
        try:
            data = (root / path).read_bytes()
        except OSError:
            continue
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def run_hooks(root: Path, files: list[str], *, timeout: float | None = None, keep: Path | None = None) -> HooksResult:
    """Hooks on the milestone's work; if they rewrote files, once more on the rewritten tree.

    A fixer (end-of-file, trailing whitespace) fails the first run by design and passes the second.
    Nothing is restored on failure (see the module docstring); `keep` receives the bytes from before.
    """
    if not has_config(root):
        return HooksResult(ran=False, skipped_reason=f"no {CONFIG}")
    existing = [path for path in files if (root / path).is_file()]
    if not existing:
        return HooksResult(ran=False, skipped_reason="no files to check")
    if keep is not None:
        keep_copies(root, existing, keep)
    result = HooksResult(ran=True, files=existing)
    first = run_precommit(root, existing, timeout=timeout)
    result.runs.append(first)
    if not first.passed and first.modified and first.returncode != 124:
        result.runs.append(run_precommit(root, existing, timeout=timeout))
    return result


def parse_counts(output: str) -> dict[str, int]:
    """`12 passed, 1 failed, 2 skipped` (pytest's last line, and most runners' look-alikes)."""
    counts: dict[str, int] = {}
    for number, word in _COUNT.findall(output):
        key = "errors" if word.startswith("error") else word
        counts[key] = int(number)  # the last summary line wins
    return counts


def run_command(root: Path, command: str, *, timeout: float | None = None) -> CommandResult:
    """Runs the project's test command through the shell in the repository root, under the time limit."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8", NO_COLOR="1")
    returncode, output = _run(command, root, env, timeout)
    return CommandResult(command=command, returncode=returncode, output=output, counts=parse_counts(output))


def tail(output: str, lines: int = 20) -> list[str]:
    """The last `lines` non-empty lines of a tool's output, plus pre-commit's own log when it points there."""
    shown = [line for line in output.strip().splitlines() if line.strip()][-lines:]
    match = re.search(r"Check the log at (\S+)", output)
    if match:
        try:
            log_lines = Path(match.group(1)).read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            log_lines = []
        shown += [f"[{match.group(1)}] {line}" for line in log_lines[-lines:]]
    return shown
