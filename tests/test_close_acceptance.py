"""Acceptance thresholds over two milestones: unmet (refused), forced (recorded), met, and the comparison between them."""

from __future__ import annotations

import re

from _close_support import git, head, index_state, make_run
from tunix_rt import milestones
from tunix_rt.project import Project

SUMMARY_HEADINGS = ["Result", "Change Against M43", "What Was Tried and Failed", "Sample Predictions",
                    "Lessons and Next Steps", "Work Log", "Runs", "Quality Gates", "Environment", "Evidence and Files",
                    "Commit"]


def test_thresholds_unmet_then_forced_then_met_with_the_comparison(project: Project, run_cli) -> None:
    root = project.root
    assert run_cli("start", "M43", "--title", "First run", "--phase", "4", "--accept", "train.final_loss<=0.5").code == 0
    make_run(project, "M43", "m43_v1", loss0=3.0)  # final loss 0.6
    before_head, before_index = head(root), index_state(root)
    ledger_bytes = project.ledger("M43").read_bytes()

    refused = run_cli("close", "--skip-hooks")
    assert refused.code == 2
    assert "threshold not met: train.final_loss<=0.5: measured 0.6 (m43_v1)" in refused.err
    assert head(root) == before_head and index_state(root) == before_index
    assert project.ledger("M43").read_bytes() == ledger_bytes
    assert not (root / "ProjectFiles/Milestones/Phase4/M43_summary.md").exists()

    forced = run_cli("close", "--skip-hooks", "--force")
    assert forced.code == 0, forced
    assert "threshold not met (closed with --force): train.final_loss<=0.5" in forced.out
    state = milestones.load(project, "M43")
    assert state.status == "closed" and state.closed.unmet_thresholds == ["train.final_loss<=0.5"]
    summary = (root / "ProjectFiles/Milestones/Phase4/M43_summary.md").read_text(encoding="utf-8")
    assert "| `train.final_loss<=0.5` | 0.6 | m43_v1 | ❌ NOT MET |" in summary
    assert "**Closed with --force although 1 threshold(s) were not met:** `train.final_loss<=0.5`." in summary
    audit = (root / "ProjectFiles/Milestones/Phase4/M43_audit.md").read_text(encoding="utf-8")
    assert "| Threshold `train.final_loss<=0.5` | ❌ NOT MET | measured 0.6 on m43_v1 |" in audit
    body = git(root, "log", "-1", "--format=%B")
    assert "- Acceptance: train.final_loss<=0.5 0.6 NOT MET (closed with --force)" in body

    assert run_cli("start", "M44", "--title", "Second run", "--accept", "train.final_loss<=0.5",
                   "--accept", "eval.primary_score>=0.3").code == 0
    make_run(project, "M44", "m44_v1", loss0=2.0)  # final loss 0.4
    make_run(project, "M44", "m44_v2", kind="eval")
    changed = run_cli("accept", "eval.totals.contains_rate>=0.4")
    assert changed.code == 0 and "set after run(s) m44_v1, m44_v2" in changed.out
    done = run_cli("close", "--skip-hooks")
    assert done.code == 0, done
    summary = (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", summary, re.M) == SUMMARY_HEADINGS
    assert len(summary.splitlines()) <= 200
    for row in ("| `train.final_loss<=0.5` | 0.4 | m44_v1 | ✅ met |",
                "| `eval.primary_score>=0.3` | 0.35 | m44_v2 | ✅ met |",
                "| `eval.totals.contains_rate>=0.4` (set after run(s) m44_v1, m44_v2) | 0.45 | m44_v2 | ✅ met |",
                "| Final loss (last window) | 0.6 | 0.4 | -0.2 (-33.3 %) |"):
        assert row in summary, row
    # The result comes before any detail, and every table appears once.
    assert summary.index("## Result") < summary.index("## Change Against M43") < summary.index("## Runs")
    assert summary.count("| Metric | Value |") == 1 and summary.count("| Final loss (last window) | 0.4 |") == 1
    # The summary, the master doc and the commit name the result the same way.
    headline = "final loss 0.4 (m44_v1), eval normalised 7/20 (35.0 %) (m44_v2)"
    assert f"**Headline:** {headline}" in summary
    assert f"- **Result**: {headline}" in (root / "PROJECT.md").read_text(encoding="utf-8")
    assert git(root, "log", "-1", "--format=%s") == f"M44: Second run - {headline}\n"


def test_a_bad_threshold_is_refused_before_anything_is_written(project: Project, run_cli) -> None:
    status = git(project.root, "status", "--porcelain", "--untracked-files=all")
    for expression, words in (("eval.primary_score>>0.4", "is not a number"), ("score", "expected KEY OP NUMBER"),
                              ("train.bogus<=1", "unknown key 'train.bogus'"),
                              ("eval.primary_score>=nan", "finite number")):
        out = run_cli("start", "M44", "--title", "t", "--accept", expression)
        assert out.code == 2 and words in out.err and len(out.err.strip().splitlines()) == 1, out
    assert git(project.root, "status", "--porcelain", "--untracked-files=all") == status
    assert project.find_ledger("M44") is None


def test_accept_on_a_closed_milestone_is_refused(project: Project, run_cli) -> None:
    milestones.start(project, "M44", "t", phase=4)
    assert run_cli("close", "--skip-hooks").code == 0
    out = run_cli("accept", "eval.primary_score>=0.1", "--milestone", "M44")
    assert out.code == 2 and "is closed" in out.err


def test_a_threshold_with_no_run_to_measure_is_unmet(project: Project, run_cli) -> None:
    milestones.start(project, "M44", "t", phase=4, accept=["eval.primary_score>=0.1"])
    out = run_cli("close", "--skip-hooks")
    assert out.code == 2 and "eval.primary_score>=0.1: no value measured" in out.err


def test_an_adopted_master_doc_gets_the_new_block_in_its_own_format(project: Project, run_cli) -> None:
    master = project.root / "PROJECT.md"
    master.write_text(
        "# Tunix RT\n\n**Milestone M45 Complete** ✅ | **M45:** research complete\n\n## Overview\n\n"
        "**M45 Enhancements:** Curriculum Training (Research, Phase 5):\n- **Training:** 3 stages\n"
        "- **Eval:** 41/100\n\n## Database Schema\n\nTables.\n", encoding="utf-8")
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "M45: Curriculum Training - research complete")
    assert run_cli("start", "M46", "--title", "Observer Model", "--phase", "5").code == 0
    make_run(project, "M46", "m46_v1", loss0=2.0)
    assert run_cli("close", "--skip-hooks").code == 0
    text = master.read_text(encoding="utf-8")
    block = text.split("**M46 Enhancements:**", 1)[1].split("\n\n", 1)[0]
    assert block.startswith(" Observer Model (Research, Phase 5):\n- **Result:** final loss 0.4 (m46_v1)")
    assert text.index("**M46 Enhancements:**") < text.index("## Database Schema")
    assert "**Milestone M46 Complete** ✅ | **M46:** final loss 0.4 (m46_v1)" in text
    assert "**M45 Enhancements:** Curriculum Training (Research, Phase 5):\n- **Training:** 3 stages" in text
