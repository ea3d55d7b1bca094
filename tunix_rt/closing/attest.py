"""Phase 5 of close, sign (only with --sign): the in-toto statement of exactly what the commit will hold (every
document and the ledger as rendered, every tracked evidence file as its run recorded it), signed with git's SSH key.
Runs outside the ledger lock like the gates; if the ledger moves meanwhile, close renders and signs again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunix_rt import attestation, ledger
from tunix_rt.closing.documents import Documents
from tunix_rt.closing.facts import Facts
from tunix_rt.project import Project


@dataclass(frozen=True)
class Attested:
    files: dict[str, bytes]  # statement and signature, by repository path


def subjects(project: Project, repo: Any, facts: Facts, documents: Documents) -> dict[str, str]:
    """sha256 of every committed document and the ledger as rendered, and of every evidence file git does
    not ignore, as its bytes are now (the commit takes them from the work tree)."""
    from tunix_rt import vcs

    found = {rel: attestation.sha256(data) for rel, data in documents.contents(facts).items()}
    evidence = sorted(project.relative(path) for run in facts.runs
                      for path in (project.root / run.folder).rglob("*") if path.is_file())
    ignored = vcs.ignored_paths(repo, evidence)
    for rel in evidence:
        if rel not in ignored:
            found[rel] = attestation.sha256((project.root / rel).read_bytes())
    return found


def predicate_parts(facts: Facts) -> dict[str, Any]:
    state = facts.state
    runs = []
    for run in facts.runs:
        final = run.final
        runs.append({
            "id": run.run.id, "kind": run.run.kind, "status": run.run.status, "folder": run.folder,
            "final_loss": final.final_loss if final is not None else None,
            "primary_metric": run.eval.primary_metric if run.eval is not None else None,
            "primary_score": run.eval.primary_score if run.eval is not None else None,
        })
    return {
        "baseline": {"sha": state.baseline.sha, "branch": state.baseline.branch},
        "thresholds": [{"expression": j.threshold.expression, "measured": j.measured, "run": j.run, "met": j.met}
                       for j in facts.judged],
        "runs": runs,
    }


def attest(project: Project, repo: Any, facts: Facts, documents: Documents) -> Attested:
    statement = attestation.build(facts.mid, facts.state.title, ledger_head=ledger.head(documents.ledger),
                                  subjects=subjects(project, repo, facts, documents), **predicate_parts(facts))
    signature = attestation.sign(repo, statement)
    folder = facts.layout.folder
    return Attested({attestation.statement_path(folder, facts.mid): statement,
                     attestation.signature_path(folder, facts.mid): signature})
