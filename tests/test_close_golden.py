"""Golden files for the close templates: summary, audit, commit message and master doc block.

Everything that varies between machines is pinned (time, git dates, the run's env snapshot); the
baseline SHA is replaced by a marker. Regenerate with `UPDATE_GOLDEN=1 pytest tests/test_close_golden.py`
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _close_support import git, make_run
from tunix_rt import closing, ledger, milestones, render
from tunix_rt.project import Project

GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "close"


@pytest.fixture
def pinned(project: Project) -> Project:
    milestones.start(project, "M44", "Golden close", phase=4, accept=["train.final_loss<=0.8"])
    (project.root / "train.py").write_text("print('train')\nprint('more')\n", encoding="utf-8")
    plan = project.root / "ProjectFiles/Milestones/Phase4/M44_plan.md"
    plan.write_text(plan.read_text(encoding="utf-8").replace(
        "## Objective\n", "## Objective\n\nTrain a tiny model and keep its evidence.\n")
        + "\n## Next Steps\n\n- Score the held-out set with the new tokenizer.\n", encoding="utf-8")
    answers = project.root / "ProjectFiles/Milestones/Phase4/M44_answers.md"
    answers.write_text(answers.read_text(encoding="utf-8") + "\n## Lessons\n\n- Pin the CPU wheel before anything "
                       "else resolves torch.\n", encoding="utf-8")
    milestones.accept(project, "eval.primary_score>=0.3")
    milestones.add_entry(project, "M44", title="Write the trainer", tools=["write"], purpose="code",
                         files=["train.py"], status="completed")
    milestones.add_entry(project, "M44", title="JAX CUDA install", tools=["run_terminal_cmd"], purpose="install JAX",
                         status="failed", sections=[("Attempts", "pip install jax[cuda12]"), ("Attempts", "jax 0.4.21"),
                                                    ("Conclusion", "JAX CUDA is Linux-only"),
                                                    ("Resolution", "Pivot to PyTorch")])
    make_run(project, "M44", "m44_v1", steps=25)
    make_run(project, "M44", "m44_v2", kind="eval")
    return project


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_golden_documents(pinned: Project) -> None:
    result = closing.close(pinned, "M44", skip_hooks=True)
    baseline = milestones.load(pinned, "M44").baseline.sha
    head = ledger.head(pinned.ledger("M44").read_bytes())  # event ids are random: so is the head
    clean = lambda text: (text.replace(baseline, "<BASELINE>").replace(baseline[:12], "<BASELINE>")  # noqa: E731
                          .replace(head, "<LEDGER-HEAD>"))
    assert f"\nMilestone: M44\nMilestone-Ledger-Head: {head}\n" in result.message
    _check("M44_summary.md", clean(result.summary))
    _check("M44_audit.md", clean(result.audit))
    _check("commit_message.txt", clean(result.message))
    _check("PROJECT.md", clean((pinned.root / "PROJECT.md").read_text(encoding="utf-8")))
    assert git(pinned.root, "log", "-1", "--format=%B").rstrip("\n") == result.message.rstrip("\n")
    assert len(result.summary.splitlines()) <= 200


def test_project_template_overrides_the_default(pinned: Project) -> None:
    templates = pinned.root / "templates"
    templates.mkdir()
    (templates / "summary.md.j2").write_text("# {{ mid }} custom\n\n{{ work.line }}\n", encoding="utf-8")
    render._environment.cache_clear()  # drop environments cached by earlier tests in this process
    result = closing.close(Project.find(pinned.root), "M44", dry_run=True)
    # train.py (2 lines) and the new template itself (3 lines) are the work
    assert result.summary == "# M44 custom\n\n2 files changed, 5 insertions(+)\n"
