"""`milestone report`: what the pages say equals the evidence, hostile text stays text, the site is written whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _close_support import git
from _report_support import HOSTILE, copy_project, new_report_project

from tunix_rt import evidence, milestones, report
from tunix_rt.errors import TunixError
from tunix_rt.project import Project
from tunix_rt.report._gather import gather


GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "report"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Read-only for the tests that take it; a test that changes the project works on `fresh`."""
    return new_report_project(tmp_path_factory.mktemp("report") / "repo")


@pytest.fixture
def fresh(built: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    project = copy_project(built, tmp_path / "repo")
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("TUNIX_RT_NOW", "2026-01-08T12:00:00Z")
    return project


@pytest.fixture(scope="module")
def site_dir(built: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report.build(built, tmp_path_factory.mktemp("site") / "out").out


def text_of(html: str) -> str:
    """The page as text: tags out, entities back (enough for these assertions)."""
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&#34;", '"'), ("&#39;", "'"), ("&quot;", '"'), ("&amp;", "&")):
        text = text.replace(entity, char)
    return " ".join(text.split())


# --- gather: the numbers are the evidence's --------------------------------------------------------------------


def test_gather_reads_every_milestone_with_the_evidence_numbers(built: Project) -> None:
    site = gather(built)
    assert [(m.id, m.status, m.history) for m in site.milestones] == [
        ("M11", "closed", True), ("M12", "closed", False), ("M13", "open", False)]
    m11, m12, m13 = site.milestones
    assert m11.runs == [] and "Train the observer" in m11.toolcalls  # the hand-written log, as it is

    final = evidence.read_metrics(built.runs_dir / "m12_v1" / evidence.METRICS).final
    summary = evidence.read_eval_summary(built.runs_dir / "m12_v2" / evidence.EVAL_SUMMARY)
    assert final is not None and summary is not None
    assert (m12.final_loss, m12.final_loss_run) == (final.final_loss, "m12_v1")
    assert (m12.primary_score, m12.primary_metric, m12.primary_run) == (summary.primary_score, "normalised", "m12_v2")
    assert [(t.expression, t.met) for t in m12.thresholds] == [
        ("train.final_loss<=1", True), ("eval.primary_score>=0.5", False)]
    assert [(r.id, r.verified.ok, r.verified.text) for r in m12.runs] == [
        ("m12_v1", True, "ok (8 files)"), ("m12_v2", True, "ok (5 files)")]
    steps = evidence.read_metrics(built.runs_dir / "m12_v1" / evidence.METRICS).steps
    assert [c.run for c in m12.curves] == ["m12_v1"]
    assert m12.curves[0].loss == [s.loss for s in steps] and m12.curves[0].steps == [s.step for s in steps]
    assert [(row.label, row.value) for row in m12.runs[1].eval.totals][:3] == [  # type: ignore[union-attr]
        ("n", "20"), ("exact", "5 (0.25)"), ("normalised", "7 (0.35)")]
    assert len(m12.samples) == 5 and {s.correct for s in m12.samples} == {True, False}
    assert m13.status == "open" and m13.runs == [] and m13.entries_total == 1


def test_index_shows_the_gathered_numbers(built: Project, site_dir: Path) -> None:
    index = (site_dir / "index.html").read_text(encoding="utf-8")
    row = text_of(re.search(r'<tr id="M12">.*?</tr>', index, re.S).group(0))  # type: ignore[union-attr]
    final = evidence.read_metrics(built.runs_dir / "m12_v1" / evidence.METRICS).final
    assert final is not None and final.final_loss is not None
    assert f"{final.final_loss!r} m12_v1" in row
    assert "normalised 7/20 (35.0 %) m12_v2" in row
    assert "1/2 met unmet: eval.primary_score>=0.5" in row and "✔ verified" in row
    assert "<svg" in index  # the cross-milestone chart, inline
    for mid in ("M11", "M12", "M13"):
        assert f'<a href="{mid}.html">{mid}</a>' in index


def test_milestone_page_has_chart_tables_samples_and_log(site_dir: Path) -> None:
    page = (site_dir / "M12.html").read_text(encoding="utf-8")
    text = text_of(page)
    assert page.count("<svg") == 1 and "Loss per step" in text
    assert "By category" in text and "arithmetic 12 5 0.4167" in text
    assert "Sample predictions (m12_v2)" in text and "What is 0 + 4?" in text
    assert "✔ ok (8 files)" in text and "✘ unmet" in text
    assert "Write the trainer" in text  # the rendered tool-calls log
    history = text_of((site_dir / "M11.html").read_text(encoding="utf-8"))
    assert "No runs recorded." in history and "Observer AUC 0.91" in history


@pytest.mark.parametrize("name", ["index.html", "M12.html", "M13.html"])
def test_golden_pages(built: Project, site_dir: Path, name: str) -> None:
    """The templates' output, byte for byte, with what varies between machines replaced by markers: the charts
    (matplotlib's SVG changes with its version; `test_same_ledger_same_bytes` holds them) and the closing commit.
    Regenerate with `UPDATE_GOLDEN=1 pytest tests/test_report.py` and review the diff."""
    commit = milestones.show(built, "M12").commit
    assert commit is not None
    text = re.sub(r"<svg.*?</svg>", "<svg><!-- chart --></svg>", (site_dir / name).read_text(encoding="utf-8"),
                  flags=re.S).replace(commit[:12], "<COMMIT>")
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


# --- untrusted text stays text ----------------------------------------------------------------------------------


def test_hostile_log_text_is_shown_as_text_and_never_as_markup(site_dir: Path) -> None:
    page = (site_dir / "M13.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert HOSTILE.split(" and ")[0] in text_of(page)
    for path in site_dir.glob("*.html"):
        html = path.read_text(encoding="utf-8").lower()
        assert "<script" not in html and "<img" not in html and "onerror=" not in html.replace("onerror=alert", "")
        assert 'src="http' not in html and "<link" not in html  # nothing fetched from anywhere


def test_markdown_renderer_passes_no_raw_html() -> None:
    from tunix_rt.report._draw import markdown_html

    html = markdown_html("# T\n\n<b>x</b>\n\n![i](https://example.com/i.png) [ok](M12_plan.md)\n")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<img" not in html and '<a href="M12_plan.md">ok</a>' in html


# --- the site as a whole ----------------------------------------------------------------------------------------


def test_same_ledger_same_bytes(built: Project, site_dir: Path, tmp_path: Path) -> None:
    again = report.build(built, tmp_path / "again").out
    names = sorted(p.name for p in site_dir.iterdir())
    assert names == [".gitignore", "M11.html", "M12.html", "M13.html", "index.html"]
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (again / name).read_bytes() == (site_dir / name).read_bytes(), name


def test_changed_evidence_shows_the_verify_failure(fresh: Project) -> None:
    log = fresh.runs_dir / "m12_v1" / "training_log.txt"
    log.write_text(log.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    out = report.build(fresh).out
    index = text_of((out / "index.html").read_text(encoding="utf-8"))
    page = text_of((out / "M12.html").read_text(encoding="utf-8"))
    assert "✘ 1 run(s) fail verify" in index
    assert "✘ 1 problem(s) changed: submission_runs/m12_v1/training_log.txt" in page


def test_a_broken_ledger_is_a_row_that_says_so_and_a_missing_view_is_rendered(fresh: Project) -> None:
    with fresh.ledger("M12").open("a", encoding="utf-8") as handle:
        handle.write("not json\n")
    fresh.doc_path("M13", "toolcalls").unlink()
    out = report.build(fresh).out
    index = text_of((out / "index.html").read_text(encoding="utf-8"))
    assert "M12 5 unreadable" in index and "M13 Hostile text" in index
    assert "The ledger could not be read:" in text_of((out / "M12.html").read_text(encoding="utf-8"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (out / "M13.html").read_text(encoding="utf-8")


def test_a_failed_build_leaves_the_previous_report_and_no_debris(fresh: Project) -> None:
    out = report.build(fresh).out
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (fresh.root / "templates" / "report").mkdir(parents=True)
    broken = fresh.root / "templates" / "report" / "milestone.html.j2"
    broken.write_text("{% if %}\n", encoding="utf-8")
    with pytest.raises(TunixError, match="report/milestone.html.j2"):
        report.build(fresh)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".tunix-report")) == [".tunix-report"]
    # The project's same-named template replaces the packaged one.
    broken.write_text('{% extends "report/_layout.html.j2" %}{% block main %}custom {{ milestone.id }}'
                      "{% endblock %}\n", encoding="utf-8")
    report.build(fresh)
    assert "custom M13" in (out / "M13.html").read_text(encoding="utf-8")


def test_a_folder_of_other_files_is_never_replaced(fresh: Project, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me\n", encoding="utf-8")
    with pytest.raises(TunixError, match="did not write"):
        report.build(fresh, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


# --- the command ------------------------------------------------------------------------------------------------


def test_cli_writes_the_default_folder_which_git_ignores(fresh: Project, run_cli) -> None:
    done = run_cli("report")
    assert done.code == 0, done.err
    index = fresh.root / ".tunix-report" / "index.html"
    assert done.out.strip() == str(index) and index.is_file()
    assert ".tunix-report" not in git(fresh.root, "status", "--porcelain", "--untracked-files=all")
    data = run_cli("report", "--json", "--out", "elsewhere")
    assert data.code == 0, data.err
    assert '"pages": [\n    "index.html",\n    "M11.html",\n    "M12.html",\n    "M13.html"\n  ]' in data.out
    assert (fresh.root / "elsewhere" / "M13.html").is_file()


def test_importing_the_cli_imports_no_matplotlib() -> None:
    code = "import sys, tunix_rt.cli; sys.exit('matplotlib' in sys.modules or 'tunix_rt.report' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
