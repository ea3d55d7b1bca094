"""`make demo` end to end: the demo closes its milestone and the summary a reviewer reads first fits in 200 lines."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_the_demo_closes_with_a_summary_that_fits_in_200_lines() -> None:
    done = subprocess.run([sys.executable, "scripts/demo.py"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (REPO_ROOT / "demo-output/project/ProjectFiles/Milestones/Phase1/M01_summary.md").read_text("utf-8")
    assert len(summary.splitlines()) <= 200
    assert re.findall(r"^## (.+)$", summary, re.M)[:2] == ["Result", "What Was Tried and Failed"]
    assert "**Headline:** final loss " in summary and "eval normalised " in summary
    # Each run shows its header and its result block, the per-step progress folded into one line.
    out = done.stdout
    train = out[out.index("$ milestone run train"):out.index("$ milestone run eval")]
    for header in ("  model gpt2: ", "  data: ", "  training: "):
        assert header in train
    assert re.search(r"^  \.\.\. \d+ progress lines \(all of them are in the run's training_log\.txt\) \.\.\.$",
                     train, re.M)
    assert not re.search(r"^  step \d+/\d+ ", out, re.M)
    assert re.search(r"^  run m01_v1 completed: submission_runs/m01_v1/$", train, re.M)
    evaluation = out[out.index("$ milestone run eval"):out.index("$ milestone verify")]
    assert re.search(r"^  run m01_v2 completed: ", evaluation, re.M) and "  eval: exact " in evaluation
