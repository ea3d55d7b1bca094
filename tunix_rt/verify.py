"""`milestone verify M44`: what a reader with only a clone can check about a milestone, without trusting anyone.

1. ledger     the hash chain holds from the first line to the last (readers name the first broken line)
2. head       the chain's last link is the `Milestone-Ledger-Head:` of the commit carrying `Milestone: M44`
              (found by its trailer, so a rebase or cherry-pick that moved it changes nothing)
3. evidence   every file each run recorded hashes to its recorded sha256; a file git ignores (weights) and
              that is not in this clone is reported as such, not as a failure
4. view       `M44_toolcalls.md` is byte for byte a fresh render of the ledger
5. documents  the summary, the audit and the master-doc block are byte for byte a fresh render from the ledger,
              the evidence, git and what the close recorded of itself (`closing/record.py`: the gates,
              checks and git's files at close time); a close from before that record is compared with the
              bytes of its closing commit instead
6. statement  when close signed one: every subject's sha256, its ledger head, and the SSH signature
              against `gpg.ssh.allowedSignersFile` (naming the signer)

Exit 0 when every check holds, 1 naming each file (and ledger line) that does not. Reads only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tunix_rt import attestation, evidence, ledger, masterdoc, vcs, views
from tunix_rt.closing.documents import LEDGER_HEAD_TRAILER
from tunix_rt.closing.facts import layout
from tunix_rt.errors import TunixError
from tunix_rt.models import Milestone
from tunix_rt.project import Project


@dataclass(frozen=True)
class Check:
    subject: str  # a path, or "ledger"
    ok: bool
    detail: str


@dataclass
class MilestoneReport:
    milestone: str
    commit: str | None = None  # the closing commit, found by its trailer
    head: str | None = None  # the chain's last link, as the ledger is now
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def to_json(self) -> dict[str, Any]:
        return {"milestone": self.milestone, "commit": self.commit, "ledger_head": self.head, "ok": self.ok,
                "checks": [{"subject": c.subject, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def verify_milestone(project: Project, mid: str) -> MilestoneReport:
    path = project.find_ledger(mid)
    if path is None:
        raise TunixError(f"no milestone {mid} in this repository")
    report = MilestoneReport(mid)
    rel = project.relative(path)
    data = path.read_bytes()
    try:
        state = ledger.fold(path, ledger.parse(path, data))
    except TunixError as exc:  # the chain or a line is broken: the rest would check a state nobody can trust
        report.checks.append(Check(rel, False, str(exc).removeprefix(f"{path}:").strip()))
        return report
    report.head = ledger.head(data)
    report.checks.append(Check(rel, True, f"{len(data.splitlines())} lines, hash chain intact"))
    repo = vcs.open_repo(project.root)
    report.checks.append(_head(repo, state, report))
    report.checks += _evidence(project, state)
    from tunix_rt.milestones import is_history

    if is_history(state):
        report.checks.append(Check(mid, True, "hand-run history: its own log and documents are the record"))
        return report
    lay = layout(project, state)
    report.checks.append(_view(project, repo, report.commit, state, lay.toolcalls))
    if report.commit is not None and state.closed is not None and state.closed.rendered_from is not None:
        report.checks += _rendered(project, repo, report.commit, state, data)
    elif report.commit is not None:
        report.checks += _documents(project, repo, report.commit, mid, [lay.summary, lay.audit], lay.master)
    report.checks += _statement(project, repo, lay, report)
    return report


def _statement(project: Project, repo: Any, lay: Any, report: MilestoneReport) -> list[Check]:
    folder, mid = lay.folder, report.milestone
    rel = attestation.statement_path(folder, mid)
    try:
        data = (project.root / rel).read_bytes()
    except OSError:
        return []  # closed without --sign
    try:
        statement = json.loads(data)
        listed = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
        recorded_head = statement["predicate"]["ledger_head"]
    except (ValueError, KeyError, TypeError):
        return [Check(rel, False, "not an in-toto statement this tool wrote")]
    checks = []
    changed = []
    for name, digest in sorted(listed.items()):
        try:
            now = attestation.sha256((project.root / name).read_bytes())
        except OSError:
            now = None
        if now == digest:
            continue
        if name == lay.master and report.commit is not None:  # later milestones add their blocks to it
            committed = vcs.blob_text(repo, report.commit, name)
            if committed is not None and attestation.sha256(committed) == digest:
                continue
        changed.append(name)
    if changed:
        checks += [Check(name, False, f"differs from the sha256 in {rel}") for name in changed]
    if recorded_head != report.head:
        checks.append(Check(rel, False, "its ledger head is not the ledger's"))
    try:
        signature = (project.root / attestation.signature_path(folder, mid)).read_bytes()
    except OSError:
        return [*checks, Check(rel, False, "its signature file is missing")]
    ok, detail = attestation.check_signature(repo, data, signature)
    checks.append(Check(rel, ok and not changed, f"{len(listed)} subjects; {detail}"))
    return checks


def _head(repo: Any, state: Milestone, report: MilestoneReport) -> Check:
    subject = "ledger head"
    from tunix_rt.milestones import is_history

    if is_history(state):
        return Check(subject, True, f"{report.head} (hand-run history: closed before the tool, no trailer)")
    # Looked for whatever the ledger says: a ledger whose closing line was cut reads as open.
    report.commit = vcs.trailer_commit(repo, state.id)
    if report.commit is None and state.status != "closed":
        return Check(subject, True, f"{report.head} (open: no closing commit to hold it yet)")
    if report.commit is None:
        return Check(subject, False, f"no commit carries the trailer 'Milestone: {state.id}' (a squash merge keeps "
                                     "it only when its message keeps the trailers)")
    recorded = vcs.trailer_value(repo, report.commit, LEDGER_HEAD_TRAILER)
    if recorded is None:
        return Check(subject, True, f"commit {report.commit[:12]} predates the ledger head trailer: not checked")
    if recorded != report.head:
        assert report.head is not None
        return Check(subject, False, f"the ledger ends at {report.head[:16]}…, its closing commit "
                                     f"{report.commit[:12]} recorded {recorded[:16]}… (lines were added, removed "
                                     "or changed at the end)")
    return Check(subject, True, f"{recorded} = {LEDGER_HEAD_TRAILER} of commit {report.commit[:12]}")


def _evidence(project: Project, state: Milestone) -> list[Check]:
    checks = []
    for run in state.runs:
        try:
            found = evidence.verify(project, run.id)
        except TunixError as exc:
            checks.append(Check(run.path or run.id, False, str(exc)))
            continue
        for rel in found.changed:
            checks.append(Check(rel, False, "differs from the sha256 its run recorded"))
        for rel in found.missing:
            checks.append(Check(rel, False, "tracked evidence missing from this clone"))
        for rel in found.absent_ignored:
            checks.append(Check(rel, True, "not in this clone (ignored by git), digest recorded"))
        if found.manifest_error:
            checks.append(Check(f"{found.path}/{evidence.MANIFEST}", False, found.manifest_error))
        if found.ok:
            checks.append(Check(found.path, True, f"{found.checked} files match their recorded sha256"))
    return checks


# A newer version of the tool may render an old ledger differently (a template changed): a document that is
# not a fresh render still holds when it is, byte for byte, what the closing commit recorded.
_AS_COMMITTED = "the bytes of the closing commit {commit}; this version of the tool renders it differently"


def _as_committed(repo: Any, commit: str | None, rel: str, shown: bytes) -> bool:
    return commit is not None and vcs.blob_text(repo, commit, rel) == shown


def _view(project: Project, repo: Any, commit: str | None, state: Milestone, rel: str) -> Check:
    try:
        shown = (project.root / rel).read_bytes()
    except OSError:
        return Check(rel, False, "missing")
    fresh = views.full_text(project, state).text.encode("utf-8")
    if shown == fresh:
        return Check(rel, True, "a fresh render of the ledger, byte for byte")
    if _as_committed(repo, commit, rel, shown):
        return Check(rel, True, _AS_COMMITTED.format(commit=(commit or "")[:12]))
    return Check(rel, False, "differs from a fresh render of the ledger")


def _rendered(project: Project, repo: Any, commit: str, state: Milestone, data: bytes) -> list[Check]:
    """Summary, audit and master-doc block rendered again, as close rendered them, and compared byte for byte."""
    from tunix_rt.closing import record
    from tunix_rt.closing.documents import render_documents
    from tunix_rt.closing.facts import from_ledger

    assert state.closed is not None
    facts = from_ledger(project, state, data, resumed=True)
    report, gates, options, executive = record.restore(facts, state.closed)
    lay = facts.layout
    before = vcs.blob_text(repo, f"{commit}^", lay.master)  # the master doc as the close found it
    documents = render_documents(project, facts, report, gates, options, executive, [],
                                 before.decode("utf-8", "replace") if before is not None else None)
    checks = []
    fresh = "a fresh render of the ledger, the evidence and the close's record, byte for byte"
    for rel, text in ((lay.summary, documents.summary), (lay.audit, documents.audit)):
        try:
            shown = (project.root / rel).read_bytes()
        except OSError:
            checks.append(Check(rel, False, "missing"))
            continue
        if shown == text.encode("utf-8"):
            checks.append(Check(rel, True, fresh))
        elif _as_committed(repo, commit, rel, shown):
            checks.append(Check(rel, True, _AS_COMMITTED.format(commit=commit[:12])))
        else:
            checks.append(Check(rel, False, "differs from a fresh render of the ledger, the evidence and the close's "
                                            "record"))
    try:
        shown_doc = (project.root / lay.master).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        shown_doc = None
    subject = f"{lay.master} ({state.id} block)"
    shown_block = masterdoc.existing_block(shown_doc, state.id)
    committed = vcs.blob_text(repo, commit, lay.master)
    if shown_block == masterdoc.existing_block(documents.master, state.id):
        checks.append(Check(subject, True, fresh))
    elif committed is not None and shown_block is not None and \
            shown_block == masterdoc.existing_block(committed.decode("utf-8", "replace"), state.id):
        checks.append(Check(subject, True, _AS_COMMITTED.format(commit=commit[:12])))
    else:
        checks.append(Check(subject, False, "differs from a fresh render"))
    return checks


def _documents(project: Project, repo: Any, commit: str, mid: str, paths: list[str], master: str) -> list[Check]:
    """The documents close wrote, against the bytes of the closing commit (edited after close means differs)."""
    checks = []
    for rel in paths:
        committed = vcs.blob_text(repo, commit, rel)
        try:
            shown = (project.root / rel).read_bytes()
        except OSError:
            shown = None
        if committed is None:
            checks.append(Check(rel, False, f"not in the closing commit {commit[:12]}"))
        elif shown != committed:
            checks.append(Check(rel, False, f"differs from the closing commit {commit[:12]}"))
        else:
            checks.append(Check(rel, True, f"the bytes of the closing commit {commit[:12]}"))
    committed_doc = vcs.blob_text(repo, commit, master)
    try:
        shown_doc = (project.root / master).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        shown_doc = None
    block = masterdoc.existing_block(committed_doc.decode("utf-8", "replace") if committed_doc else None, mid)
    subject = f"{master} ({mid} block)"
    if block is None:
        checks.append(Check(subject, False, f"the closing commit {commit[:12]} holds no {mid} block"))
    elif masterdoc.existing_block(shown_doc, mid) != block:
        checks.append(Check(subject, False, f"differs from the closing commit {commit[:12]}"))
    else:
        checks.append(Check(subject, True, f"the block of the closing commit {commit[:12]}"))
    return checks
