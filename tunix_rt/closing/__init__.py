"""The `milestone close` use case, read top to bottom as its phases:

1. gather   (`facts.py`)     a snapshot of the ledger, git's files since the baseline, every run's evidence
2. check    (`checks.py`)    every reason to refuse, before anything runs or is written (exit 2)
3. gates    (`gates.py`)     pre-commit and the test command, without the ledger lock, under a time limit (exit 1)
4. render   (`documents.py`) summary, audit, master-doc block and commit message; pure
5. sign     (`attest.py`)    with --sign: the in-toto statement of the documents and evidence, signed with SSH
6. commit   (`commit.py`)    under the lock: documents, the closing event, one commit of exactly checked blobs

Each phase hands the next a typed object. A close is all or nothing: when the commit exists the
milestone is closed; otherwise HEAD, the index, the ledger and the documents are as they were. A
ledger that already says closed while no commit carries `Milestone: MNN` is a close interrupted
after its event: it resumes. The commit's SHA is never written into a committed file: `show` finds
the commit by its trailer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt import attestation, vcs
from tunix_rt.closing.attest import attest
from tunix_rt.closing.checks import Check, Options, run_checks
from tunix_rt.closing.commit import LedgerMoved, commit, commit_files, write_documents
from tunix_rt.closing.documents import PLACEHOLDER_SUMMARY, Documents, render_documents
from tunix_rt.closing.facts import Facts, gather
from tunix_rt.closing.gates import Gates, run_gates
from tunix_rt.closing.text import Totals
from tunix_rt.errors import TunixError, WorkFailed
from tunix_rt.ids import run_prefix
from tunix_rt.project import Project
from tunix_rt.redact import redact

ATTEMPTS = 50  # renders tried while other writers (agents, runs) keep appending to the ledger


@dataclass
class CloseResult:
    milestone: str
    title: str
    dry_run: bool
    no_commit: bool
    resumed: bool
    commit: str | None
    tag: str | None
    files: list[str]  # what the commit carries (or would)
    written: list[str]  # documents written to disk
    summary: str
    audit: str
    master_block: str
    message: str
    warnings: list[str]
    checks: list[Check]
    gates: Gates
    work: Totals
    whole: Totals
    unmet: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "milestone": self.milestone,
            "title": self.title,
            "dry_run": self.dry_run,
            "no_commit": self.no_commit,
            "resumed": self.resumed,
            "commit": self.commit,
            "tag": self.tag,
            "files": self.files,
            "written": self.written,
            "warnings": self.warnings,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "unmet_thresholds": self.unmet,
            "hooks": {"ran": self.gates.hooks.ran, "passed": self.gates.hooks.passed,
                      "skipped_reason": self.gates.hooks.skipped_reason, "runs": self.gates.hooks.runs,
                      "modified": list(self.gates.hooks.modified)},
            "tests": None if not self.gates.tests.ran else {"command": self.gates.tests.command,
                                                             "returncode": self.gates.tests.returncode,
                                                             "passed": self.gates.tests.passed},
            "work": vars(self.work),
            "whole": vars(self.whole),
            "message": self.message,
        }


def read_summary(summary: str | None) -> tuple[str | None, list[str]]:
    """`--summary TEXT|@FILE`, read (bounded), checked and redacted; returns the text and warnings."""
    if summary is None:
        return None, []
    if summary.startswith("@"):
        path = Path(summary[1:])
        try:
            with path.open("rb") as handle:
                data = handle.read(1_000_001)
        except OSError as exc:
            raise TunixError(f"--summary {summary}: cannot read {path}: {exc.strerror}") from exc
        if len(data) > 1_000_000:
            raise TunixError(f"--summary {summary}: {path} is over 1 MB; an executive summary is a paragraph")
        try:
            summary = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TunixError(f"--summary {summary}: {path} is not UTF-8 text") from None
    from tunix_rt.milestones import required

    text, kinds = redact(required(summary, "--summary"))
    return text, [f"redacted {', '.join(sorted(set(kinds)))} from --summary"] if kinds else []


def _final_checks(facts: Facts, files: list[str], options: Options) -> list[Check]:
    """How the documents state the commit-time gate (the commit exists only if it held)."""
    when = "checked when the commit is made" if options.dry_run or options.no_commit else \
        "the exact blobs of this commit, after every other gate"
    return [Check("Large files and secrets", True, f"{len(files)} files: {when} (text and binary)")]


def _result(facts: Facts, documents: Documents, gates: Gates, options: Options, files: list[str],
            warnings: list[str], checks: list[Check], unmet: list[str]) -> CloseResult:
    own = facts.changes.own + documents.doc_rows
    return CloseResult(
        milestone=facts.mid, title=facts.state.title, dry_run=options.dry_run, no_commit=options.no_commit,
        resumed=facts.resumed, commit=None, tag=run_prefix(facts.mid) if options.tag else None, files=files,
        written=[], summary=documents.summary, audit=documents.audit, master_block=documents.master_block,
        message=documents.message, warnings=warnings, checks=checks, gates=gates,
        work=Totals.of(facts.changes.work), whole=Totals.of(facts.changes.work + own), unmet=unmet,
    )


def close(
    project: Project,
    milestone: str | None = None,
    *,
    dry_run: bool = False,
    no_commit: bool = False,
    skip_hooks: bool = False,
    force: bool = False,
    tag: bool = False,
    summary: str | None = None,
    sign: bool | None = None,
) -> CloseResult:
    """Closes a milestone (see the module docstring); returns what it did and prints nothing."""
    given, warnings = read_summary(summary)
    sign = project.settings.close.sign if sign is None else sign
    options = Options(dry_run, no_commit, skip_hooks, force, tag, given, sign and not (dry_run or no_commit))
    mid = project.resolve_milestone(milestone)
    repo = vcs.open_repo(project.root)
    vcs.clear_stale_close_lock(repo)
    if options.sign:
        attestation.signing_key(repo)  # refused before anything runs when git cannot sign

    facts = gather(project, repo, mid)  # refuses a milestone already closed
    report = run_checks(project, repo, facts, options)
    gates = run_gates(project, facts, options, Path(repo.git_dir))
    for attempt in range(ATTEMPTS):
        if attempt or gates.modified:  # the hooks rewrote files, or an agent appended meanwhile: look again
            facts = gather(project, repo, mid)  # a close racing this one may have closed it meanwhile
            report = run_checks(project, repo, facts, options)
        executive = options.summary or facts.notes.objective or PLACEHOLDER_SUMMARY
        notes = list(warnings) + facts.warnings + report.warnings + report.forced
        if executive == PLACEHOLDER_SUMMARY:
            notes.append("no executive summary: pass --summary or fill the plan's Objective (the audit flags it)")
        files = commit_files(facts)
        final_checks = _final_checks(facts, files, options)
        master = project.root / facts.layout.master
        before = master.read_text(encoding="utf-8") if master.is_file() else None
        documents = render_documents(project, facts, report, gates, options, executive, final_checks, before)
        result = _result(facts, documents, gates, options, files, notes, report.checks + final_checks, report.unmet)
        if options.dry_run:
            return result
        if options.no_commit:  # drafts only: nothing that claims completion (the master doc is not touched)
            write_documents(project, facts, documents, master=False)
            result.written = [facts.layout.summary, facts.layout.audit]
            return result
        signed = attest(project, repo, facts, documents) if options.sign else None  # outside the lock
        try:
            done = commit(project, repo, facts, documents, documents.message, result.tag, signed)
        except LedgerMoved:
            continue
        result.commit, result.files = done.sha, done.files
        result.written = [facts.layout.summary, facts.layout.audit, facts.layout.master, facts.layout.toolcalls]
        result.written += list(signed.files) if signed else []
        return result
    raise WorkFailed(f"the ledger of {mid} kept changing while close ran ({ATTEMPTS} tries); run close again")


__all__ = ["CloseResult", "Options", "close", "read_summary"]
