"""Phase 5 of close, commit: under the ledger lock, write the documents, append the closing event, and make one
commit whose exact blobs pass the size and secret gate; any failure puts the ledger and documents back.

The lock is taken only here. If the ledger grew since the gather phase (an agent's hook recorded a
call while the gates ran), nothing is written and the caller gathers and renders again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tunix_rt import ledger, views
from tunix_rt.closing.attest import Attested
from tunix_rt.closing.checks import files_check, refusal
from tunix_rt.closing.documents import Documents
from tunix_rt.closing.facts import Facts
from tunix_rt.errors import TunixError, WorkFailed
from tunix_rt.project import Project


@dataclass(frozen=True)
class Committed:
    sha: str
    files: list[str]


class LedgerMoved(Exception):
    """The ledger changed since it was read: gather again (not an error the user sees)."""


def commit_files(facts: Facts) -> list[str]:
    """The work since the baseline, the milestone's evidence and documents: nothing of another milestone."""
    rows = facts.changes.work + facts.changes.own
    return sorted({r.path for r in rows} | set(facts.changes.since_head) | set(facts.layout.documents))


def write_documents(project: Project, facts: Facts, documents: Documents, *, master: bool) -> dict[str, bytes | None]:
    """Writes summary, audit (and the master doc when `master`); returns each file's previous bytes."""
    lay = facts.layout
    contents = documents.contents(facts)
    targets = [lay.summary, lay.audit] + ([lay.master] if master else [])
    previous: dict[str, bytes | None] = {}
    for rel in targets:
        path = project.root / rel
        previous[rel] = path.read_bytes() if path.is_file() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        views.write_atomic(path, contents[rel].decode("utf-8"))
    return previous


def _put_back(project: Project, contents: dict[str, bytes], previous: dict[str, bytes | None]) -> None:
    """Undoes the writes of files that still hold what close wrote (a later edit is never overwritten)."""
    for rel, old in previous.items():
        path = project.root / rel
        try:
            if path.read_bytes() != contents[rel]:
                continue
            if old is None:
                path.unlink()
            else:
                path.write_bytes(old)
        except OSError:
            continue


def commit(project: Project, repo: Any, facts: Facts, documents: Documents, message: str,
           tag: str | None, signed: Attested | None = None) -> Committed:
    from tunix_rt import vcs

    path = project.ledger(facts.mid)
    files = sorted(set(commit_files(facts)) | set(signed.files if signed else {}))
    def gate(blobs: list[vcs.StagedBlob]) -> None:
        large, secrets = files_check(project, [(b.path, b.data) for b in blobs])
        problems = list(large.problems) + list(secrets.problems)
        if problems:
            raise refusal(facts.mid, problems)

    with ledger.writer(path) as w:
        if os.pread(w.fd, w.size, 0) != facts.ledger_bytes:
            raise LedgerMoved
        previous = write_documents(project, facts, documents, master=True)
        written = dict(signed.files) if signed else {}
        for rel, data in written.items():
            target = project.root / rel
            previous[rel] = target.read_bytes() if target.is_file() else None
            target.write_bytes(data)
        if documents.event is not None:
            w.append(documents.event)
        try:
            views.write_full(project, facts.mid, w, documents.toolcalls)
            sha = vcs.commit_paths(repo, files, message, tag=tag, inspect=gate)
        except BaseException as exc:
            w.truncate(w.size_before)
            _put_back(project, {**documents.contents(facts), **written}, previous)
            if isinstance(exc, TunixError):
                raise
            if isinstance(exc, Exception):
                raise WorkFailed(f"close failed while committing: {exc}; the ledger and the index are as they were") \
                    from exc
            raise
    return Committed(sha, files)
