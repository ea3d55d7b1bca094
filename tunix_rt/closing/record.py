"""What a close records beyond the ledger and the evidence, so that `milestone verify` renders its documents again,
byte for byte, from a clone.

The documents show three kinds of facts. The ledger's (entries, thresholds, the close itself) and the evidence
files' (metrics, evaluations, predictions, configs) are read again. The rest happened once, at close time, on
one machine: the quality gates' outcome, the checks and warnings, git's view of the files since the baseline,
the branch, the executive summary and the plan's notes. Those go into the closing event
(`ClosedInfo.rendered_from`), so the render needs no clock and no machine facts other than these.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tunix_rt.closing.checks import Check, CheckReport, Options
from tunix_rt.closing.facts import Changes, Facts, PlanNotes
from tunix_rt.closing.gates import Gates, HookSummary, TestSummary
from tunix_rt.closing.text import FileRow
from tunix_rt.models import ClosedInfo

VERSION = 1


def capture(facts: Facts, report: CheckReport, gates: Gates, options: Options, executive: str,
            checks: list[Check]) -> dict[str, Any]:
    """The render's inputs that neither the ledger nor the evidence hold (`checks`: every check shown)."""
    return {
        "version": VERSION,
        "executive": executive,
        "branch": facts.branch,
        "tag": options.tag,
        "changes": {
            "work": [asdict(row) for row in facts.changes.work],
            "own": [asdict(row) for row in facts.changes.own],
            "left_alone": list(facts.changes.left_alone),
            "others": [list(pair) for pair in facts.changes.others],
        },
        "notes": asdict(facts.notes),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        "warnings": facts.warnings + report.warnings,
        "forced": list(report.forced),
        "hooks": asdict(gates.hooks),
        "tests": asdict(gates.tests),
        "run_verify": {run.run.id: run.verify for run in facts.runs},
    }


def restore(facts: Facts, info: ClosedInfo) -> tuple[CheckReport, Gates, Options, str]:
    """Puts the recorded inputs back into `facts` (gathered from the ledger and evidence alone) and returns
    the check report, gates, options and executive summary the close rendered with."""
    recorded = info.rendered_from
    assert recorded is not None
    changes = recorded["changes"]
    facts.branch = recorded["branch"]
    facts.changes = Changes(
        work=[FileRow(**row) for row in changes["work"]], own=[FileRow(**row) for row in changes["own"]],
        left_alone=list(changes["left_alone"]), others=[(path, other) for path, other in changes["others"]],
        since_head=[],
    )
    facts.notes = PlanNotes(**recorded["notes"])
    facts.warnings = list(recorded["warnings"])
    for run in facts.runs:
        run.verify = recorded["run_verify"].get(run.run.id, run.verify)
    report = CheckReport(checks=[Check(**c) for c in recorded["checks"]], forced=list(recorded["forced"]),
                         unmet=list(info.unmet_thresholds))
    hooks = dict(recorded["hooks"], modified=tuple(recorded["hooks"]["modified"]))
    gates = Gates(HookSummary(**hooks), TestSummary(**recorded["tests"]), modified=False)
    options = Options(force=info.forced, skip_hooks=info.skipped_hooks, tag=bool(recorded["tag"]))
    return report, gates, options, recorded["executive"]
