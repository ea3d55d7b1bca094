"""Phase 3 of close, quality gates: pre-commit on the milestone's work, then the project's test command.

Both run without the ledger lock (an agent's hooks keep recording meanwhile) and under the time
limit `close.timeout_s`. A failure is exit 1 with the last lines of the tool's own output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunix_rt import hooks
from tunix_rt.closing.checks import Options
from tunix_rt.closing.facts import Facts
from tunix_rt.errors import WorkFailed
from tunix_rt.project import Project

BEFORE_HOOKS = "before-hooks"  # under .git/tunix-rt/: the files' bytes from before the hooks ran


def _status(ran: bool, passed: bool) -> str:
    if not ran:
        return "NOT RUN"
    return "✅ PASS" if passed else "❌ FAIL"


@dataclass(frozen=True)
class HookSummary:
    """pre-commit's outcome as the documents show it (plain values: templates call no methods)."""

    ran: bool
    passed: bool
    skipped_reason: str
    passed_count: int
    failed_count: int
    skipped_count: int
    files: int
    runs: int
    modified: tuple[str, ...]

    @classmethod
    def of(cls, result: hooks.HooksResult) -> HookSummary:
        counts = result.counts()
        return cls(result.ran, result.passed, result.skipped_reason, counts.get("Passed", 0), counts.get("Failed", 0),
                   counts.get("Skipped", 0), len(result.files), len(result.runs), tuple(result.modified))

    @property
    def status(self) -> str:
        return _status(self.ran, self.passed)

    @property
    def detail(self) -> str:
        if not self.ran:
            return self.skipped_reason
        text = (f"{self.passed_count} passed, {self.failed_count} failed, {self.skipped_count} skipped on "
                f"{self.files} files; {self.runs} run(s)")
        return text + (f"; rewrote {', '.join(self.modified)}" if self.modified else "")


@dataclass(frozen=True)
class TestSummary:
    command: str | None
    ran: bool
    passed: bool
    returncode: int | None
    counts: str  # `12 passed, 1 skipped`
    skipped_reason: str

    @property
    def status(self) -> str:
        return _status(self.ran, self.passed)

    @property
    def detail(self) -> str:
        if not self.ran:
            return self.skipped_reason
        return f"`{self.command}` exit {self.returncode}" + (f", {self.counts}" if self.counts else "")


@dataclass(frozen=True)
class Gates:
    hooks: HookSummary
    tests: TestSummary
    modified: bool  # the hooks rewrote files: the gather phase must look again


def _fail(what: str, output: str, hint: str) -> WorkFailed:
    shown = "\n".join(f"  {line}" for line in hooks.tail(output, 20))
    return WorkFailed(f"{what}; nothing was committed\n{shown}\n{hint}")


def run_gates(project: Project, facts: Facts, options: Options, git_dir: Path) -> Gates:
    timeout = project.settings.close.timeout_s
    files = [r.path for r in facts.changes.work if r.change != "deleted"]
    if options.dry_run:
        result = hooks.HooksResult(ran=False, skipped_reason="dry run: not run")
    elif options.skip_hooks:
        result = hooks.HooksResult(ran=False, skipped_reason="skipped (--skip-hooks)")
    else:
        keep = git_dir / "tunix-rt" / BEFORE_HOOKS
        result = hooks.run_hooks(project.root, files, timeout=timeout, keep=keep)
        if not result.passed:
            failing = ", ".join(h.id for h in result.failing()) or "pre-commit"
            final = result.final
            rewrote = f"; it rewrote {', '.join(result.modified)} (the bytes from before are in {keep})" \
                if result.modified else ""
            raise _fail(f"pre-commit failed: {failing} (after {len(result.runs)} run(s)){rewrote}",
                        final.output if final else "",
                        "fix what it reports and run `milestone close` again, or pass --skip-hooks (recorded)")
    command = project.settings.close.test_command
    if not command:
        tests = TestSummary(None, False, True, None, "", "no `close.test_command` setting")
    elif options.dry_run:
        tests = TestSummary(command, False, True, None, "", "dry run")
    else:
        ran = hooks.run_command(project.root, command, timeout=timeout)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(ran.counts.items()))
        tests = TestSummary(command, True, ran.passed, ran.returncode, counts, "")
        if not ran.passed and not options.force:
            raise _fail(f"test command failed (exit {ran.returncode}): {command}", ran.output,
                        "fix the failures and run `milestone close` again, or close --force (recorded)")
    return Gates(HookSummary.of(result), tests, bool(result.modified))
