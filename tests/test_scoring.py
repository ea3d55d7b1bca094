"""`milestone eval score`: a predictions file nobody scored becomes an evidence folder with the plugin's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CORPUS, DATA, NEEDS_SHARED
from tunix_rt import evidence, milestones, scoring
from tunix_rt.project import Project

SCORING = DATA / "scoring"


def test_the_scorers_fold_formats_and_match_whole_tokens() -> None:
    assert scoring.score("1000", "$1,000.0", "$1,000.0") == {"exact": False, "normalised": True, "contains": True}
    assert scoring.score("42", "142", "the answer is 142")["contains"] is False
    assert scoring.extract_answer("Step 1: think\nAnswer: 7\n") == "7"
    assert scoring.extract_answer("so the final answer is: Paris.") == "Paris"


def test_scoring_a_trace_shaped_predictions_file(project: Project, run_cli) -> None:
    milestones.start(project, "M44", "Score old predictions", phase=4)
    out = run_cli("eval", "score", str(SCORING / "predictions_trace_shape.jsonl"), "--eval-set",
                  str(SCORING / "eval.jsonl"))
    assert out.code == 0, out
    assert "Scored 3 of 5 items: normalised 2/3 (66.7 %); exact 1/3, contains 3/3; 1 prediction(s) matched no item" \
        in out.out
    folder = project.root / "submission_runs/m44_v1"
    summary = evidence.read_eval_summary(folder / evidence.EVAL_SUMMARY)
    assert summary is not None and summary.n_items == 5 and summary.n_scored == 3
    assert summary.primary_metric == "normalised" and summary.primary_score == 0.6667
    assert (summary.totals.exact, summary.totals.normalised, summary.totals.contains) == (1, 2, 3)
    assert summary.by_category["arithmetic"].n == 2 and summary.by_category["knowledge"].normalised == 1
    assert summary.unmatched_predictions == [
        "line 4: no eval item with id 'ev-999' or this prompt"]
    records = [json.loads(line) for line in (folder / evidence.PREDICTIONS).read_text().splitlines()]
    assert [r["extracted"] for r in records] == ["42", "paris", "998"]
    manifest = evidence.load_manifest(folder / evidence.MANIFEST)
    assert manifest.plugin.name == "score" and manifest.model.source == "external"
    assert manifest.model.id == "submission_runs/m43_v1/final_model"  # named by the file itself
    assert [d.records for d in manifest.datasets] == [5, 4]
    assert evidence.verify(project, "m44_v1").ok
    state = milestones.load(project, "M44")
    assert state.runs[0].kind == "eval" and state.runs[0].status == "completed"
    assert state.entries[0].status == "completed" and "Scored 3 of 5 items" in state.entries[0].sections[0].items[0]


def test_the_score_run_feeds_thresholds_and_the_summary(project: Project, run_cli) -> None:
    milestones.start(project, "M44", "Score", phase=4, accept=["eval.primary_score>=0.6"])
    assert run_cli("eval", "score", str(SCORING / "predictions_trace_shape.jsonl"), "--eval-set",
                   str(SCORING / "eval.jsonl"), "--model", "my-model").code == 0
    out = run_cli("close", "--skip-hooks")
    assert out.code == 0, out
    summary = (project.root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    assert "| `eval.primary_score>=0.6` | 0.6667 | m44_v1 | ✅ met |" in summary
    assert "| ev-001 | What is 15 + 27? | 42 | 42 | ✅ |" in summary


@pytest.mark.parametrize("predictions, words", [
    ("missing.jsonl", "does not exist"),
    ("eval.jsonl", "no output field"),
])
def test_bad_input_is_exit_2_and_writes_nothing(project: Project, run_cli, predictions: str, words: str) -> None:
    milestones.start(project, "M44", "t", phase=4)
    out = run_cli("eval", "score", str(SCORING / predictions), "--eval-set", str(SCORING / "eval.jsonl"))
    assert out.code == 2 and words in out.err and len(out.err.strip().splitlines()) == 1
    assert not (project.root / "submission_runs/m44_v1").exists()


def test_predictions_that_match_nothing_are_refused(project: Project, run_cli, tmp_path: Path) -> None:
    milestones.start(project, "M44", "t", phase=4)
    stray = tmp_path / "stray.jsonl"
    stray.write_text(json.dumps({"id": "zzz", "prompt": "?", "generated": "1"}) + "\n", encoding="utf-8")
    out = run_cli("eval", "score", str(stray), "--eval-set", str(SCORING / "eval.jsonl"))
    assert out.code == 2 and "matches an item" in out.err
    assert not (project.root / "submission_runs/m44_v1").exists()


@pytest.mark.skipif(not (CORPUS / "m43_predictions.jsonl").is_file(), reason=NEEDS_SHARED)
def test_the_corpus_predictions_that_were_never_scored(project: Project, run_cli) -> None:
    milestones.start(project, "M43", "Score M43 at last", phase=4)
    out = run_cli("eval", "score", str(CORPUS / "m43_predictions.jsonl"), "--eval-set", str(CORPUS / "eval_v2.jsonl"))
    assert out.code == 0, out
    summary = evidence.read_eval_summary(project.root / "submission_runs/m43_v1" / evidence.EVAL_SUMMARY)
    assert summary is not None and summary.n_items == 100 and summary.n_scored == 20
    # The hand-run model repeated the prompt instead of answering: nothing is right under the primary metric.
    assert summary.totals.normalised == 0
