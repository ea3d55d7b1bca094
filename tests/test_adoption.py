"""Adopting a repository run by hand: init finds what is there, ids in use are refused, history imports closed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _support import MILESTONES, HandRun, git, hand_run_repo

from tunix_rt import config, masterdoc, milestones
from tunix_rt.models import Run
from tunix_rt.project import Project
from conftest import CORPUS, NEEDS_SHARED


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> HandRun:
    return hand_run_repo(tmp_path_factory.mktemp("handrun") / "demo")


@pytest.fixture
def hand(template: HandRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HandRun:
    """A fresh copy of the hand-run repository, as the working directory."""
    root = tmp_path / "demo"
    shutil.copytree(template.root, root, symlinks=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("TUNIX_RT_NOW", "2026-01-10T12:00:00Z")
    return HandRun(root=root, closing=template.closing, finalize=template.finalize)


def status(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=all")


# --- 1. init -----------------------------------------------------------------------------------------------------


def test_init_records_the_master_doc_and_folders_it_found_and_adds_only_missing_ignore_rules(hand, run_cli) -> None:
    gitignore_before = (hand.root / ".gitignore").read_text(encoding="utf-8")
    done = run_cli("init")
    assert done.code == 0, done.err
    # 19 documents: 3 plans, 5 summaries, 5 logs and 6 Temp placeholders
    found = (
        "milestones folder ProjectFiles/Milestones (Phase1, Phase3, Phase4, Phase5; 19 milestone documents); "
        "master doc demo-rt.md"
    )
    assert f"found {found}" in done.out
    settings_text = (hand.root / "milestone.toml").read_text(encoding="utf-8")
    assert f"# milestone init found: {found}\n" in settings_text
    settings = config.load_settings(hand.root)
    assert (settings.master_doc, settings.milestones_dir) == ("demo-rt.md", MILESTONES)
    assert not (hand.root / "PROJECT.md").exists()  # never a second master doc
    added = (hand.root / ".gitignore").read_text(encoding="utf-8")[len(gitignore_before) :].splitlines()
    rules = [line for line in added if line and not line.startswith("#")]
    # checkpoints/, *.safetensors and *.bin were already covered by the project's own rules
    assert rules == ["submission_runs/**/final_model/", "submission_runs/**/*.pt", "submission_runs/**/*.ckpt"]
    snapshot = {p: p.read_bytes() for p in (hand.root / ".gitignore", hand.root / "milestone.toml")}
    again = run_cli("init")
    assert again.code == 0 and "wrote" not in again.out
    assert all(path.read_bytes() == data for path, data in snapshot.items())


def test_init_in_an_empty_repository_still_creates_the_defaults(repo, run_cli) -> None:
    done = run_cli("init")
    assert done.code == 0 and "found" not in done.out
    assert (repo / "PROJECT.md").is_file() and (repo / "ProjectFiles/Milestones").is_dir()


def test_detect_prefers_the_root_doc_with_the_most_blocks_over_the_readme(tmp_path) -> None:
    from tunix_rt import scaffold

    (tmp_path / "README.md").write_text("**Milestone M41 Complete** ✅\n", encoding="utf-8")
    (tmp_path / "tunix-rt.md").write_text(
        "**Milestone M50 Complete** ✅\n\n**M50 Enhancements:** x\n", encoding="utf-8"
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("**Milestone M9 Complete**\n\n**M1 Enhancements:** a\n" * 3)
    assert scaffold.detect(tmp_path).master_doc == "tunix-rt.md"


# --- 2. ids and phases -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mid", "where"),
    [
        ("M09", "ProjectFiles/Milestones/Phase4/M09_plan.md"),
        ("m9", "ProjectFiles/Milestones/Phase4/M09_plan.md"),
        ("M13", "ProjectFiles/Milestones/Temp/M13_plan.md"),  # a staging placeholder outside any Phase folder
        ("M15", "branch feat/m15-try"),
        ("M00", "commit "),  # `M0: project skeleton`, an unpadded id in a subject
    ],
)
def test_start_refuses_an_id_in_use_naming_where_and_the_next_free_id(hand, run_cli, mid, where) -> None:
    run_cli("init")
    before = status(hand.root)
    done = run_cli("start", mid, "--title", "again")
    assert done.code == 2
    assert done.err.count("\n") == 1 and where in done.err and "the next free id is M16" in done.err, done.err
    assert status(hand.root) == before  # nothing written


def test_start_refuses_an_id_only_a_commit_subject_uses(hand, run_cli) -> None:
    run_cli("init")
    git(hand.root, "commit", "-q", "--allow-empty", "-m", "M20: done elsewhere - merged")
    done = run_cli("start", "M20", "--title", "x")
    assert done.code == 2 and "M20: done elsewhere" in done.err and "next free id is M21" in done.err


def test_a_new_milestone_goes_into_the_phase_of_the_highest_milestone_unless_told(hand, run_cli) -> None:
    run_cli("init")
    assert run_cli("start", "M16", "--title", "next").code == 0
    assert milestones.load(Project.find(hand.root), "M16").phase == 5  # M11 is in Phase5
    assert run_cli("start", "M17", "--title", "elsewhere", "--phase", "6").code == 0
    assert milestones.load(Project.find(hand.root), "M17").phase == 6


def test_abort_removes_a_started_milestone_and_frees_its_id(hand, run_cli) -> None:
    run_cli("init")
    git(hand.root, "add", "-A")
    git(hand.root, "commit", "-q", "-m", "adopt the tool")
    before = status(hand.root)
    assert run_cli("start", "M16", "--title", "try").code == 0
    dry = run_cli("abort", "--dry-run")
    assert dry.code == 0 and "would remove ProjectFiles/Milestones/Phase5/M16.ledger.jsonl" in dry.out
    assert (hand.root / MILESTONES / "Phase5/M16.ledger.jsonl").exists()
    done = run_cli("abort")
    assert done.code == 0, done.err
    for name in ("M16.ledger.jsonl", "M16_toolcalls.md", "M16_plan.md", "M16_questions.md", "M16_answers.md"):
        assert f"removed ProjectFiles/Milestones/Phase5/{name}" in done.out
    assert status(hand.root) == before
    assert run_cli("status").out.startswith("no current milestone")
    assert run_cli("start", "M16", "--title", "again").code == 0


def test_abort_keeps_documents_written_since_start(hand, run_cli) -> None:
    run_cli("init")
    run_cli("start", "M16", "--title", "try")
    plan = hand.root / MILESTONES / "Phase5/M16_plan.md"
    plan.write_text("# M16 Plan — try\n\nReal thoughts.\n", encoding="utf-8")
    done = run_cli("abort")
    assert (
        done.code == 0 and "kept ProjectFiles/Milestones/Phase5/M16_plan.md (written by hand since start)" in done.out
    )
    assert plan.read_text(encoding="utf-8").endswith("Real thoughts.\n")


@pytest.mark.parametrize("why", ["run", "commit"])
def test_abort_refuses_a_milestone_with_runs_or_commits(hand, run_cli, why) -> None:
    run_cli("init")
    run_cli("start", "M16", "--title", "try")
    project = Project.find(hand.root)
    if why == "run":
        milestones.record_run(
            project,
            "M16",
            Run(
                id="m16_v1",
                kind="train",
                plugin="p",
                path="submission_runs/m16_v1",
                status="completed",
                started="2026-01-10T12:00:00Z",
            ),
        )
    else:
        git(hand.root, "commit", "-q", "--allow-empty", "-m", "work on it")
    before = status(hand.root)
    done = run_cli("abort")
    assert done.code == 2 and ("runs (m16_v1)" in done.err if why == "run" else "has commits" in done.err), done.err
    assert status(hand.root) == before


# --- 3. history import -------------------------------------------------------------------------------------------


def test_import_all_brings_history_in_closed_and_rewrites_no_tracked_file(hand, run_cli) -> None:
    run_cli("init")
    tracked = hand.tracked_bytes()
    done = run_cli("import", "--all", "--json")
    assert done.code == 0, done.err
    rows = {row["milestone"]: row for row in json.loads(done.out)["imported"]}
    expect = {
        "M01": ("Baseline Setup", 1, "closed", hand.closing["M01"]),  # no log, no title in the summary: the plan's
        "M02": ("Dataset Pipeline", 1, "closed", hand.closing["M02"]),
        "M07": ("Survey and Decide", 3, "closed", hand.closing["M07"]),  # title from the summary
        "M08": ("Install and Train on CPU", 3, "closed", hand.closing["M08"]),  # not the later Finalize commit
        "M09": ("Structured Self-Correction", 4, "closed", None),  # title from the plan; closed by its log
        "M10": ("Curriculum Run", 4, "closed", hand.closing["M10"]),  # no summary: the oldest `M10:` commit
        "M11": ("Observer Model", 5, "open", None),
    }
    assert {m: (r["title"], r["phase"], r["status"], r["commit"]) for m, r in rows.items()} == expect
    assert rows["M09"]["closure"] == "M09 MILESTONE CLOSED"
    assert (rows["M01"]["entries"], rows["M01"]["source"]) == (0, f"{MILESTONES}/Phase1/M01_summary.md")
    assert rows["M11"]["checkpoints"] == 3  # one section and the `**CHECKPOINT:**` lines of two entries
    after = hand.tracked_bytes()
    changed = {name for name in tracked if tracked[name] != after.get(name)}
    assert changed == {f"{MILESTONES}/Phase5/M11_toolcalls.md"}  # only the open milestone's log became its view
    for mid, phase in (("M07", 3), ("M08", 3), ("M09", 4), ("M10", 4)):
        assert (hand.root / MILESTONES / f"Phase{phase}/{mid}.ledger.jsonl").is_file()
        assert not (hand.root / MILESTONES / f"Phase{phase}/{mid}_toolcalls.imported.md").exists()
    listed = json.loads(run_cli("list", "--json").out)
    assert [(r["id"], r["status"]) for r in listed] == [(m, e[2]) for m, e in expect.items()]
    shown = json.loads(run_cli("show", "M08", "--json").out)
    assert shown["commit"] == hand.closing["M08"] and shown["closed"]["time"].startswith("2025-12-")
    assert "hand-run history imported from" in run_cli("show", "M08").out
    run_cli("render")
    assert (
        hand.tracked_bytes()[f"{MILESTONES}/Phase3/M07_toolcalls.md"]
        == tracked[f"{MILESTONES}/Phase3/M07_toolcalls.md"]
    )
    again = run_cli("import", "--all")
    assert again.code == 0 and again.out.count("already has a ledger") == 5 and "imported" not in again.out


def test_close_of_imported_history_is_refused(hand, run_cli) -> None:
    run_cli("init")
    run_cli("import", "--all")
    tracked = hand.tracked_bytes()
    done = run_cli("close", "--milestone", "M08", "--no-commit")
    assert done.code == 2 and f"M08 is already closed (hand-run, commit {hand.closing['M08'][:12]})" in done.err, done.err
    assert hand.tracked_bytes() == tracked


def test_import_one_file_takes_its_phase_from_its_folder(hand, run_cli) -> None:
    run_cli("init")
    tracked = hand.tracked_bytes()
    done = run_cli("import", f"{MILESTONES}/Phase4/M10_toolcalls.md")
    assert done.code == 0, done.err
    assert f"imported M10 — Curriculum Run (phase 4, closed by commit {hand.closing['M10'][:7]})" in done.out
    assert hand.tracked_bytes() == tracked


def test_status_without_a_current_milestone_counts_the_imported_ones(hand, run_cli) -> None:
    run_cli("init")
    for mid, phase in (("M07", 3), ("M10", 4)):
        run_cli("import", f"{MILESTONES}/Phase{phase}/{mid}_toolcalls.md")
    out = run_cli("status").out
    assert "no current milestone" in out and "2 milestones in the ledgers, the latest M10" in out


def test_a_refused_in_place_import_renames_nothing(hand, run_cli) -> None:
    """D19: the hand-written log used to be renamed before a later check refused the import."""
    run_cli("init")
    (hand.root / "templates").mkdir()
    (hand.root / "templates" / "toolcalls_header.md.j2").write_text("{% if %}\n", encoding="utf-8")
    before = status(hand.root)
    log = hand.root / MILESTONES / "Phase5/M11_toolcalls.md"
    data = log.read_bytes()
    done = run_cli("import", str(log))
    assert done.code == 2 and "template" in done.err, done.err
    assert log.read_bytes() == data and status(hand.root) == before


def test_a_refused_import_all_writes_nothing(hand, run_cli) -> None:
    run_cli("init")
    bad = hand.root / MILESTONES / "Phase5/M12_toolcalls.md"
    bad.write_bytes(b"\xff\xfe\x00\xd8 broken")  # not readable as its BOM says
    before = status(hand.root)
    done = run_cli("import", "--all")
    assert done.code == 2 and "M12_toolcalls.md" in done.err, done.err
    assert status(hand.root) == before


# --- masterdoc: the existing document's own format ---------------------------------------------------------------


def test_masterdoc_format_is_read_from_the_latest_block(hand) -> None:
    text = (hand.root / "demo-rt.md").read_text(encoding="utf-8")
    fmt = masterdoc.detect_format(text)
    assert fmt == masterdoc.BlockFormat(
        bullets=True,
        colon_inside=False,
        title_tail="(Research, Phase {phase})",
        title_colon=True,
        insert_before="## Database Schema",
        status_field=True,
    )
    block = masterdoc.render_block(fmt, "M16", "Observer Ablation", [("Result", "AUC 0.93"), ("Runs", "2")], phase=5)
    assert (
        block == "**M16 Enhancements:** Observer Ablation (Research, Phase 5):\n- **Result**: AUC 0.93\n- **Runs**: 2"
    )
    updated = masterdoc.update(text, "M16", block, heading=fmt.insert_before)
    updated = masterdoc.set_status_field(updated, "M16", "Observer ablation — AUC 0.93")
    assert updated.index(block) < updated.index("## Database Schema") and updated.index(
        "**M10 Enhancements"
    ) < updated.index(block)
    assert "**Milestone M16 Complete** ✅  \n" in updated
    assert "| **M16:** Observer ablation — AUC 0.93\n" in updated and "**M10:** Curriculum" not in updated


def test_masterdoc_paragraph_blocks_and_documents_with_no_block() -> None:
    fmt = masterdoc.detect_format(
        "# P\n\n**M1 Enhancements:** Setup - CI, lint.\n\n**M2 Enhancements:** Data - a, b.\n"
    )
    assert (fmt.bullets, fmt.insert_before, fmt.status_field) == (False, None, False)
    assert masterdoc.render_block(fmt, "M03", "Train", [("Loss", "0.5"), ("", "tests green")], phase=1) == (
        "**M03 Enhancements:** Train - Loss: 0.5, tests green"
    )
    assert masterdoc.detect_format("# P\n") == masterdoc.BlockFormat()
    assert (
        masterdoc.set_status_field("# P\n\n**Milestone M1 Complete** ✅\n", "M02", "x")
        == "# P\n\n**Milestone M1 Complete** ✅\n"
    )


@pytest.mark.skipif(not (CORPUS / "master-doc.md").is_file(), reason=NEEDS_SHARED)
def test_masterdoc_format_of_the_real_master_doc() -> None:
    fmt = masterdoc.detect_format((CORPUS / "master-doc.md").read_text(encoding="utf-8"))
    assert (fmt.bullets, fmt.colon_inside, fmt.title_tail, fmt.insert_before, fmt.status_field) == (
        True,
        False,
        "(Research, Phase {phase})",
        "## Database Schema",
        True,
    )


# --- the corpus logs, adopted in a hand-run repository -----------------------------------------------------------

CORPUS_LOGS = sorted(CORPUS.glob("M4*_toolcalls.md")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_LOGS, reason=NEEDS_SHARED)
def test_corpus_logs_adopt_as_closed_history_linked_to_their_closing_commits(hand, run_cli) -> None:
    closing = {}
    for path in CORPUS_LOGS:
        mid = path.name.split("_", 1)[0]
        phase = 4 if int(mid[1:]) < 45 else 5
        target = hand.root / MILESTONES / f"Phase{phase}" / path.name
        target.write_bytes(path.read_bytes())
        summary = CORPUS / f"{mid}_summary.md"
        if summary.is_file():
            (target.parent / summary.name).write_bytes(summary.read_bytes())
        git(hand.root, "add", "-A")
        git(hand.root, "commit", "-q", "-m", f"{mid}: corpus milestone - done")
        closing[mid] = git(hand.root, "rev-parse", "HEAD").strip()
        git(hand.root, "commit", "-q", "--allow-empty", "-m", f"{mid}: Finalize toolcalls log")
    run_cli("init")
    tracked = hand.tracked_bytes()
    done = run_cli("import", "--all", "--json")
    assert done.code == 0, done.err
    rows = {row["milestone"]: row for row in json.loads(done.out)["imported"]}
    for mid, sha in closing.items():
        assert (rows[mid]["status"], rows[mid]["commit"]) == ("closed", sha), mid
        assert rows[mid]["entries"] > 0 and rows[mid]["title"], mid
    assert rows["M46"]["title"] == "Structured Self-Correction"
    changed = {name for name, data in hand.tracked_bytes().items() if tracked.get(name) != data}
    assert changed <= {f"{MILESTONES}/Phase5/M11_toolcalls.md"}, changed


# --- the README's adoption section, run on the fixture ----------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_blocks() -> tuple[list[str], list[str]]:
    section = README.read_text(encoding="utf-8").split("## Adopting an existing project", 1)[1].split("\n## ", 1)[0]
    commands = section.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    printed = section.split("```text\n", 1)[1].split("```", 1)[0].strip().splitlines()
    return commands, printed


def test_readme_adoption_commands_run_on_the_fixture_and_print_what_it_shows(hand, run_cli) -> None:
    import re
    import shlex

    commands, printed = _readme_blocks()
    output = ""
    for line in commands:
        command, _, comment = line.partition("#")
        args = shlex.split(command)
        if args[0] == "git":
            git(hand.root, *args[1:])
            continue
        done = run_cli(*args[1:])
        assert done.code == (2 if "exit 2" in comment else 0), (line, done)
        output += done.out + done.err
    sha = re.compile(r"\b[0-9a-f]{7}\b")
    for expected in printed:
        # The commit the README's `git commit` makes has today's date, so its SHA (a baseline) differs run to run.
        assert sha.sub("<sha>", expected) in sha.sub("<sha>", output), expected


def test_the_checked_out_branch_does_not_take_its_own_id(hand, run_cli) -> None:
    """Making the branch first, or `start --branch` then `abort`, leaves a branch named for the id: it is the
    branch the milestone is for, so the id stays free on it (other branches still take theirs)."""
    run_cli("init")
    git(hand.root, "add", "-A")
    git(hand.root, "commit", "-q", "-m", "adopt the tool")
    assert run_cli("start", "M16", "--title", "try", "--branch").code == 0
    assert run_cli("abort").code == 0
    assert git(hand.root, "branch", "--show-current").strip() == "milestone/M16-try"
    assert run_cli("start", "M16", "--title", "try").code == 0
    git(hand.root, "checkout", "-q", "main")
    done = run_cli("start", "M16", "--title", "other")
    assert done.code == 2 and "M16" in done.err


def test_abort_undoes_the_import_of_an_open_milestone(hand, run_cli) -> None:
    run_cli("init")
    log = hand.root / MILESTONES / "Phase5/M11_toolcalls.md"
    data, before = log.read_bytes(), status(hand.root)
    assert run_cli("import", str(log)).code == 0
    assert log.read_bytes() != data  # the view took its place; the log was kept beside it
    done = run_cli("abort", "--milestone", "M11")
    assert done.code == 0, done.err
    assert "put ProjectFiles/Milestones/Phase5/M11_toolcalls.imported.md back as" in done.out
    assert log.read_bytes() == data and status(hand.root) == before


def test_a_log_left_in_two_phase_folders_is_imported_once(hand, run_cli) -> None:
    run_cli("init")
    copy = hand.root / MILESTONES / "Phase1/M10_toolcalls.md"  # left behind when it moved on, as M14/M15 did
    copy.write_bytes((hand.root / MILESTONES / "Phase4/M10_toolcalls.md").read_bytes())
    done = run_cli("import", "--all")
    assert done.code == 0, done.err
    skipped = f"skipped {MILESTONES}/Phase1/M10_toolcalls.md: M10 is imported from {MILESTONES}/Phase4/M10_toolcalls.md"
    assert skipped in done.out
