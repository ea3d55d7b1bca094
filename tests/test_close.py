"""`milestone close` end to end in temporary repositories, with hand-made but real evidence folders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _close_support import git, head, index_state, make_run
from tunix_rt import ledger, milestones
from tunix_rt.models import ClosedInfo, MilestoneClosed
from tunix_rt.project import Project
from conftest import CORPUS, NEEDS_SHARED

HOOK_FIXER = """\
repos:
  - repo: local
    hooks:
      - id: eof-fixer
        name: add a missing final newline
        language: system
        entry: {python} -c "import sys; bad=[p for p in sys.argv[1:] if open(p,'rb').read()[-1:] not in (b'\\\\n', b'')]; [open(p,'ab').write(b'\\\\n') for p in bad]; print('Fixing', *bad) if bad else None; sys.exit(1 if bad else 0)"
        types: [text]
"""
HOOK_FAIL = """\
repos:
  - repo: local
    hooks:
      - id: always-fail
        name: always fails
        language: system
        entry: {python} -c "import sys; print('refusing', *sys.argv[1:]); sys.exit(1)"
        types: [text]
"""


@pytest.fixture
def m44(project: Project) -> Project:
    """M44 started, with some work, a completed and a failed entry, a training run and an eval run."""
    milestones.start(project, "M44", "Tiny training run", phase=4)
    (project.root / "train.py").write_text("print('train')\n", encoding="utf-8")
    (project.root / "README.md").write_text("# demo\n\nmore text\n", encoding="utf-8")
    milestones.add_entry(project, "M44", title="Write the trainer", tools=["write"], purpose="code",
                         files=["train.py"], status="completed")
    milestones.add_entry(project, "M44", title="JAX CUDA install", tools=["run_terminal_cmd"], purpose="install JAX",
                         status="failed", sections=[("Attempts", "pip install jax[cuda12]"), ("Attempts", "jax 0.4.21"),
                                                    ("Conclusion", "JAX CUDA is Linux-only"),
                                                    ("Resolution", "Pivot to PyTorch")])
    make_run(project, "M44", "m44_v1")
    make_run(project, "M44", "m44_v2", kind="eval")
    return project


def close(project: Project, **options):
    from tunix_rt import closing

    return closing.close(project, "M44", **options)


def ledger_path(project: Project) -> Path:
    return project.ledger("M44")


# --- the happy path --------------------------------------------------------------------------------


def test_close_end_to_end_with_a_rewriting_hook(m44: Project) -> None:
    root = m44.root
    (root / ".pre-commit-config.yaml").write_text(HOOK_FIXER.format(python=sys.executable), encoding="utf-8")
    (root / "notes.txt").write_text("no final newline", encoding="utf-8")  # the hook will fix this
    baseline = milestones.load(m44, "M44").baseline.sha
    before = int(git(root, "rev-list", "--count", "HEAD"))

    result = close(m44, summary="Trained a tiny model.")

    assert int(git(root, "rev-list", "--count", "HEAD")) == before + 1
    assert git(root, "status", "--porcelain") == ""
    body = git(root, "log", "-1", "--format=%B")
    assert body.splitlines()[0].startswith("M44: Tiny training run - final loss ")
    assert "Milestone: M44" in git(root, "log", "-1", "--format=%(trailers:key=Milestone)")
    assert result.commit == head(root)
    assert milestones.show(m44, "M44").commit == head(root)
    assert (root / "notes.txt").read_bytes() == b"no final newline\n"
    hooks = result.gates.hooks
    assert hooks.ran and hooks.runs == 2 and hooks.modified == ("notes.txt",)

    summary = (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", summary, re.M)
    assert headings == ["Result", "What Was Tried and Failed", "Sample Predictions", "Lessons and Next Steps", "Work Log",
                        "Runs", "Quality Gates", "Environment", "Evidence and Files", "Commit"]
    for field in ("# M44 Milestone Summary: Tiny training run", "**Phase:** 4", "**Branch:** `main`",
                  f"**Baseline:** `{baseline[:12]}`", "**Closed (UTC):** 2026-01-08T12:00:00Z"):
        assert field in summary
    assert "- **Entry 2 — JAX CUDA install**: ❌ FAILED" in summary
    assert "  - **Attempts:** pip install jax[cuda12]" in summary and "  - **Resolution:** Pivot to PyTorch" in summary
    # Numbers equal the evidence files.
    lines = [json.loads(x) for x in (root / "submission_runs/m44_v1/metrics.jsonl").read_text().splitlines()]
    final = lines[-1]
    for key, label in (("train_runtime", "Runtime (s)"), ("train_samples_per_second", "Samples/s"),
                       ("train_tokens_per_second", "Non-pad tokens/s"), ("padding_fraction", "Padding fraction"),
                       ("mfu", "MFU"), ("final_loss", "Final loss (last window)")):
        assert summary.count(f"| {label} | {json.dumps(final[key])} |") == 1, label  # no table printed twice
    loss_rows = re.findall(r"^\| (\d+) \| [\d.]+ \| ([\d.]+) \|", summary, re.M)
    assert len(loss_rows) == 6
    by_step = {str(x["step"]): x for x in lines[:-1]}
    assert all(json.dumps(by_step[step]["loss"]) == loss for step, loss in loss_rows)
    assert loss_rows[0][0] == "1" and loss_rows[-1][0] == "40"
    assert "| arithmetic | 12 | 5 | 0.4167 |" in summary and "Evaluation: **normalised 7/20 (35.0 %)**" in summary
    assert "![m44_v1 loss curve](../../../submission_runs/m44_v1/loss_curve.png)" in summary
    assert (root / "ProjectFiles/Milestones/Phase4" / "../../../submission_runs/m44_v1/loss_curve.png").is_file()
    # Files changed: exact against git.
    whole = git(root, "diff", "--shortstat", baseline, "HEAD").strip()
    assert f"Everything since the baseline, the closing commit included: **{whole}**" in summary
    work = git(root, "diff", "--shortstat", baseline, "HEAD", "--", ".", ":!ProjectFiles", ":!submission_runs",
               ":!PROJECT.md").strip()
    assert f"(without its own documents and evidence): **{work}**" in summary
    assert "| `notes.txt` | untracked | 1 | 0 |" in summary
    assert "| pre-commit hooks | ✅ PASS | 1 passed, 0 failed, 0 skipped" in summary and "rewrote notes.txt" in summary
    # Master doc updated once; audit written; ledger says closed, with no SHA anywhere committed.
    master = (root / "PROJECT.md").read_text(encoding="utf-8")
    assert master.count("**M44 Enhancements:** Tiny training run") == 1 and "**Milestone M44 Complete** ✅" in master
    assert "No milestone complete yet" not in master
    audit = (root / "ProjectFiles/Milestones/Phase4/M44_audit.md").read_text(encoding="utf-8")
    assert "| Large files and secrets | ✅ PASS | " in audit and "| Evidence hashes | ✅ PASS | 2 run(s) verified" in audit
    assert audit.startswith("<!-- generated by milestone close") and summary.startswith("<!-- generated by milestone close")
    assert milestones.load(m44, "M44").status == "closed"
    found = subprocess.run(["git", "grep", "-I", "-c", head(root)[:7], "HEAD", "--"], cwd=root, capture_output=True)
    assert found.returncode == 1  # the closing SHA is in no committed file


def test_close_on_a_closed_milestone_is_refused(m44: Project) -> None:
    from tunix_rt.errors import TunixError

    close(m44, skip_hooks=True)
    with pytest.raises(TunixError, match="already closed") as info:
        close(m44, skip_hooks=True)
    assert info.value.exit_code == 2


def test_dry_run_writes_nothing(m44: Project) -> None:
    root = m44.root
    status = git(root, "status", "--porcelain", "--untracked-files=all")
    ledger_bytes = ledger_path(m44).read_bytes()
    result = close(m44, dry_run=True)
    assert "## Evidence and Files" in result.summary and "📝 DRAFT, not closed (dry run)" in result.summary
    assert "ProjectFiles/Milestones/Phase4/M44_summary.md" in result.files and "train.py" in result.files
    assert git(root, "status", "--porcelain", "--untracked-files=all") == status
    assert ledger_path(m44).read_bytes() == ledger_bytes
    assert not (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").exists()


def test_no_commit_writes_documents_and_a_later_close_finishes(m44: Project) -> None:
    root = m44.root
    before, index = head(root), index_state(root)
    master = (root / "PROJECT.md").read_bytes()
    result = close(m44, no_commit=True, skip_hooks=True)
    draft = (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    assert "📝 DRAFT, not closed (--no-commit)" in draft and "✅ Complete" not in draft
    assert "ProjectFiles/Milestones/Phase4/M44_summary.md" in result.written
    assert (root / "PROJECT.md").read_bytes() == master  # the block is shown, not written, until the commit
    assert result.master_block.startswith("**M44 Enhancements:** Tiny training run")
    assert head(root) == before and index_state(root) == index
    assert milestones.load(m44, "M44").status == "open"
    final = close(m44, skip_hooks=True)
    assert final.commit == head(root) != before
    assert git(root, "status", "--porcelain") == ""


def test_tag_and_json(m44: Project, run_cli) -> None:
    out = run_cli("close", "--milestone", "m44", "--skip-hooks", "--tag", "--json")
    assert out.code == 0, out
    data = json.loads(out.out)
    assert data["commit"] == head(m44.root)
    assert git(m44.root, "cat-file", "-t", "m44").strip() == "tag"
    assert git(m44.root, "rev-parse", "m44^{commit}").strip() == data["commit"]


# --- guards: nothing committed, HEAD and index unchanged, the reason named; fixing it lets close succeed ---


def _refused(project: Project, run_cli, *args: str) -> str:
    root = project.root
    before, index, ledger_bytes = head(root), index_state(root), ledger_path(project).read_bytes()
    out = run_cli("close", "--milestone", "M44", *args)
    assert out.code in (1, 2), out
    assert head(root) == before and index_state(root) == index
    assert ledger_path(project).read_bytes() == ledger_bytes
    return out.err


def _closes(project: Project, run_cli, *args: str) -> None:
    out = run_cli("close", "--milestone", "M44", *args)
    assert out.code == 0, out
    assert git(project.root, "log", "-1", "--format=%(trailers:key=Milestone,valueonly)").strip() == "M44"
    assert git(project.root, "status", "--porcelain") == ""


def test_guard_large_file(m44: Project, run_cli) -> None:
    big = m44.root / "data.bin"
    big.write_bytes(b"\1" * (20 * 1024 * 1024))
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "data.bin is 20.0 MB, over max_file_mb = 10" in err
    big.unlink()
    _closes(m44, run_cli, "--skip-hooks")


def test_guard_large_file_marked_lfs_without_lfs_is_refused(m44: Project, run_cli) -> None:
    """`filter=lfs` with no LFS filter configured stores the whole file: the gate sizes the real blob."""
    (m44.root / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n", encoding="utf-8")
    (m44.root / "data.bin").write_bytes(b"\1" * (11 * 1024 * 1024))
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "data.bin is 11.0 MB, over max_file_mb = 10" in err


def test_guard_large_file_through_an_lfs_clean_filter_passes(m44: Project, run_cli) -> None:
    """With a clean filter configured (what `git lfs install` sets up) the commit holds a small pointer."""
    (m44.root / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n", encoding="utf-8")
    (m44.root / "data.bin").write_bytes(b"\1" * (11 * 1024 * 1024))
    pointer = "import sys, hashlib; d = sys.stdin.buffer.read(); print('version https://git-lfs.github.com/spec/v1'); " \
              "print('oid sha256:' + hashlib.sha256(d).hexdigest()); print('size', len(d))"
    git(m44.root, "config", "filter.lfs.clean", f'"{sys.executable}" -c "{pointer}"')
    git(m44.root, "config", "filter.lfs.smudge", "cat")
    _closes(m44, run_cli, "--skip-hooks")
    size = int(git(m44.root, "cat-file", "-s", "HEAD:data.bin").strip())
    assert size < 200


def test_guard_secret(m44: Project, run_cli) -> None:
    token = "hf_" + "a1B2c3D4e5F6g7H8i9J0kLmN"
    (m44.root / "config.env").write_text(f"HF_TOKEN={token}\nMARKER=[REDACTED]\n", encoding="utf-8")
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "config.env:1 holds a secret (Hugging Face token)" in err
    assert token not in err
    (m44.root / "config.env").write_text("HF_TOKEN=[REDACTED]\n", encoding="utf-8")
    _closes(m44, run_cli, "--skip-hooks")


def test_guard_ignored_milestone_documents(m44: Project, run_cli) -> None:
    gitignore = m44.root / ".gitignore"
    original = gitignore.read_text(encoding="utf-8")
    gitignore.write_text(original + "*_summary.md\n", encoding="utf-8")
    line = len((original + "*_summary.md\n").splitlines())
    err = _refused(m44, run_cli, "--skip-hooks")
    assert f"M44_summary.md would not be committed: ignored by .gitignore:{line} (pattern `*_summary.md`)" in err
    gitignore.write_text(original, encoding="utf-8")
    _closes(m44, run_cli, "--skip-hooks")


def test_guard_ignored_evidence(m44: Project, run_cli) -> None:
    gitignore = m44.root / ".gitignore"
    original = gitignore.read_text(encoding="utf-8")
    gitignore.write_text(original + "*.jsonl\n", encoding="utf-8")
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "submission_runs/m44_v1/metrics.jsonl would not be committed" in err
    assert "M44.ledger.jsonl would not be committed" in err


def test_guard_in_progress_entry_and_force(m44: Project, run_cli) -> None:
    milestones.add_entry(m44, "M44", title="Still going", tools=["run"], purpose="eval", status="in-progress")
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "entry 3 (IN PROGRESS): Still going is not finished" in err
    _closes(m44, run_cli, "--skip-hooks", "--force")
    state = milestones.load(m44, "M44")
    assert state.closed.forced and state.closed.open_entries == [3]
    summary = (m44.root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    audit = (m44.root / "ProjectFiles/Milestones/Phase4/M44_audit.md").read_text(encoding="utf-8")
    assert "✅ Complete (closed with --force: see the audit)" in summary
    assert "- closed with 1 open item(s): entry 3 (IN PROGRESS): Still going" in audit


def test_guard_failing_hook_leaves_the_tree_as_it_was(m44: Project, run_cli) -> None:
    root = m44.root
    (root / ".pre-commit-config.yaml").write_text(HOOK_FAIL.format(python=sys.executable), encoding="utf-8")
    err = _refused(m44, run_cli)
    assert "pre-commit failed: always-fail" in err and "refusing" in err and "train.py" in err
    assert "or pass --skip-hooks" in err
    assert not (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").exists()
    (root / ".pre-commit-config.yaml").write_text(HOOK_FIXER.format(python=sys.executable), encoding="utf-8")
    _closes(m44, run_cli)


def test_guard_changed_evidence(m44: Project, run_cli) -> None:
    with open(m44.root / "submission_runs/m44_v1/metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"step": 99, "loss": 0.1}\n')
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "run m44_v1: submission_runs/m44_v1/metrics.jsonl changed since it was hashed" in err


def test_failing_test_command_aborts(m44: Project, run_cli) -> None:
    (m44.root / "milestone.toml").write_text(
        (m44.root / "milestone.toml").read_text(encoding="utf-8")
        + '\n[close]\ntest_command = "python -c \\"print(\'1 passed, 2 failed\'); raise SystemExit(1)\\""\n',
        encoding="utf-8",
    )
    err = _refused(m44, run_cli, "--skip-hooks")
    assert "test command failed (exit 1)" in err


def test_test_command_counts_reach_the_summary(m44: Project) -> None:
    (m44.root / "milestone.toml").write_text(
        (m44.root / "milestone.toml").read_text(encoding="utf-8")
        + "\n[close]\ntest_command = \"python -c \\\"print('12 passed, 1 skipped in 0.5s')\\\"\"\n",
        encoding="utf-8",
    )
    result = close(Project.find(m44.root), skip_hooks=True)  # a fresh Project reads the new setting
    assert "| Tests | ✅ PASS | `python -c" in result.summary and "exit 0, 12 passed, 1 skipped |" in result.summary


# --- all or nothing -------------------------------------------------------------------------------


def test_commit_failure_takes_the_ledger_event_back(m44: Project) -> None:
    from tunix_rt.errors import TunixError

    root = m44.root
    before, index, ledger_bytes = head(root), index_state(root), ledger_path(m44).read_bytes()
    lock = root / ".git/index.lock"
    lock.write_bytes(b"")  # another git process holds the index
    with pytest.raises(TunixError, match="index.lock exists"):
        close(m44, skip_hooks=True)
    assert head(root) == before and ledger_path(m44).read_bytes() == ledger_bytes
    lock.unlink()
    assert index_state(root) == index
    assert close(m44, skip_hooks=True).commit == head(root)


def test_interrupted_close_resumes(m44: Project) -> None:
    """A process killed after appending `milestone_closed` but before committing: the re-run finishes."""
    root = m44.root
    with ledger.writer(ledger_path(m44)) as w:
        w.append(MilestoneClosed(time="2026-01-08T12:00:00Z", closed=ClosedInfo(time="2026-01-08T12:00:00Z")))
    size = ledger_path(m44).stat().st_size
    assert milestones.load(m44, "M44").status == "closed"
    result = close(m44, skip_hooks=True)
    assert result.resumed and result.commit == head(root)
    assert ledger_path(m44).stat().st_size == size  # not appended twice
    assert git(root, "status", "--porcelain") == ""


def test_dirty_file_at_start_is_not_the_milestones_work(project: Project) -> None:
    root = project.root
    (root / "README.md").write_text("# demo\n\nlocal edit before the milestone\n", encoding="utf-8")
    milestones.start(project, "M44", "Docs", phase=4)
    (root / "new.py").write_text("x = 1\n", encoding="utf-8")
    milestones.add_entry(project, "M44", title="new", tools=["write"], purpose="p", status="completed")
    result = close(project, skip_hooks=True)
    assert "README.md" not in result.files and "new.py" in result.files
    assert "Dirty before M44 started and unchanged since (not counted, not committed): `README.md`" in result.summary
    assert git(root, "status", "--porcelain").strip() == "M README.md"


def test_empty_repository_first_commit(repo: Path) -> None:
    from tunix_rt import cli

    assert cli.run(["init"]) == 0
    project = Project.find(repo)
    milestones.start(project, "M01", "First", phase=1)
    (repo / "a.py").write_text("a = 1\n", encoding="utf-8")
    milestones.add_entry(project, "M01", title="a", tools=["write"], purpose="p", status="completed")
    from tunix_rt import closing

    result = closing.close(project, "M01", skip_hooks=True)
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert result.commit == head(repo)
    assert git(repo, "status", "--porcelain") == ""
    assert "**Baseline:** none (empty repository)" in result.summary


def _closed_with_a_run(project: Project, mid: str, title: str, loss0: float):
    from tunix_rt import closing

    milestones.start(project, mid, title, phase=4)
    make_run(project, mid, f"{mid.lower()}_v1", loss0=loss0)
    return closing.close(project, mid, skip_hooks=True)


def test_comparison_with_the_previous_milestones_best_run(project: Project) -> None:
    _closed_with_a_run(project, "M43", "First run", 3.0)
    result = _closed_with_a_run(project, "M44", "Second run", 2.0)
    assert "## Change Against M43" in result.summary
    assert "| Final loss (last window) | 0.6 | 0.4 | -0.2 (-33.3 %) |" in result.summary
    assert "| Eval normalised (primary score) | 0.35 | 0.35 | +0 (+0.0 %) |" in result.summary


def test_the_comparison_skips_an_earlier_milestone_whose_evidence_cannot_be_read(project: Project) -> None:
    import shutil

    _closed_with_a_run(project, "M42", "Good run", 3.0)
    _closed_with_a_run(project, "M43", "Lost evidence", 9.0)
    shutil.rmtree(project.runs_dir / "m43_v1")  # its evidence gone from this checkout
    result = _closed_with_a_run(project, "M44", "Second run", 2.0)
    assert "## Change Against M42" in result.summary
    assert "| Final loss (last window) | 0.6 | 0.4 | -0.2 (-33.3 %) |" in result.summary


def test_ignored_paths_listed_by_entries_are_warnings(m44: Project) -> None:
    (m44.root / ".gitignore").write_text((m44.root / ".gitignore").read_text() + ".venv-gpu/\n", encoding="utf-8")
    (m44.root / ".venv-gpu").mkdir()
    milestones.add_entry(m44, "M44", title="venv", tools=["run"], purpose="p", files=[".venv-gpu/"], status="completed")
    result = close(m44, skip_hooks=True)
    assert any(".venv-gpu (listed by an entry) is ignored by .gitignore" in w for w in result.warnings)
    assert ".venv-gpu (listed by an entry) is ignored" in result.audit


# --- the hand-run project's seed log, closed by the tool --------------------------------------------



def _close_seed(project: Project, run_dir_ready) -> str:
    from tunix_rt import closing

    milestones.import_log(project, CORPUS / "M43_toolcalls.md", phase=4)
    milestones.update_entry(project, "M43", 4, status="completed")  # the log left it stale at IN PROGRESS
    run_dir_ready()
    result = closing.close(project, "M43", skip_hooks=True, summary="M43 re-run with the tool: JAX pivot kept.")
    summary = result.summary
    # Every kind of fact the hand-written M43_summary.md has ...
    for text in ("| Samples/s |", "| Step | Epoch | Loss |", "## Environment", "## Evidence and Files",
                 "`submission_runs/m43_v1/`", "- **Entry 5 — JAX CUDA Installation**: FAILED — JAX CUDA NOT AVAILABLE ON WINDOWS",
                 "  - **Resolution:** ", "Pivot to PyTorch path"):
        assert text in summary, text
    assert len(re.findall(r"^  - \*\*Attempts:\*\* ", summary, re.M)) == 4
    # ... and none of its errors: no estimated counts, no made-up SHA, the commit found by its trailer.
    assert not re.search(r"~\s?\d", summary)
    assert "68667e1" not in summary and "79ef6b6" not in summary
    whole = git(project.root, "diff", "--shortstat", milestones.load(project, "M43").baseline.sha, "HEAD").strip()
    assert f"**{whole}**" in summary
    assert milestones.show(project, "M43").commit == head(project.root) == result.commit
    return summary


@pytest.mark.skipif(not (CORPUS / "M43_toolcalls.md").is_file(), reason=NEEDS_SHARED)
def test_seed_log_imported_and_closed_with_hand_made_evidence(project: Project) -> None:
    _close_seed(project, lambda: make_run(project, "M43", "m43_v1"))


@pytest.mark.slow
@pytest.mark.skipif(not (CORPUS / "M43_toolcalls.md").is_file(), reason=NEEDS_SHARED)
def test_seed_log_imported_and_closed_with_a_real_training_run(project: Project) -> None:
    pytest.importorskip("torch")
    data = Path(__file__).resolve().parent / "data" / "runs"
    for name in ("train.yaml", "traces.jsonl", "eval.jsonl"):
        (project.root / "data").mkdir(exist_ok=True)
        (project.root / "data" / name).write_bytes((data / name).read_bytes())

    def train() -> None:
        done = subprocess.run([sys.executable, "-m", "tunix_rt.cli", "run", "train", "--config", "data/train.yaml",
                               "--milestone", "M43"], cwd=project.root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    summary = _close_seed(project, train)
    metrics = [json.loads(x) for x in (project.root / "submission_runs/m43_v1/metrics.jsonl").read_text().splitlines()]
    final = metrics[-1]
    assert f"| Samples/s | {json.dumps(final['train_samples_per_second'])} |" in summary
    assert f"| MFU | {json.dumps(final['mfu'])} |" in summary
    assert "![m43_v1 loss curve](../../../submission_runs/m43_v1/loss_curve.png)" in summary


@pytest.mark.slow
def test_end_to_end_with_the_real_end_of_file_fixer(m44: Project, run_cli, tmp_path_factory: pytest.TempPathFactory,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`language: python` + pre-commit-hooks==5.0.0 (built from PyPI once per session) rewrites a file; close commits once."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path_factory.getbasetemp() / "pre-commit-home"))
    root = m44.root
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: end-of-file-fixer\n        name: fix end of files\n"
        "        language: python\n        entry: end-of-file-fixer\n        types: [text]\n"
        "        additional_dependencies: [pre-commit-hooks==5.0.0]\n",
        encoding="utf-8",
    )
    (root / "notes.txt").write_text("no final newline", encoding="utf-8")
    (root / "summary.txt").write_text("From a file.\n", encoding="utf-8")
    before = int(git(root, "rev-list", "--count", "HEAD"))
    out = run_cli("close", "--summary", "@summary.txt")
    if out.code != 0 and "CalledProcessError" in out.err:
        pytest.skip("could not build the hook environment (no PyPI?)")
    assert out.code == 0, out
    assert int(git(root, "rev-list", "--count", "HEAD")) == before + 1 and git(root, "status", "--porcelain") == ""
    summary = (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    assert "From a file." in summary and "rewrote notes.txt" in summary
    assert (root / "notes.txt").read_bytes() == b"no final newline\n"


def test_a_close_killed_between_moving_head_and_installing_the_index_is_repaired(project) -> None:
    """The narrow window of commit_paths: HEAD has the new commit, the real index is the old one."""
    import os
    import shutil
    import subprocess
    import sys

    from tunix_rt import vcs

    root = project.root
    (root / "new.txt").write_text("new\n", encoding="utf-8")
    repo = vcs.open_repo(root)
    lock, tmp_index, pid_file = vcs._close_files(repo)
    tmp_index.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / ".git" / "index", tmp_index)
    env = {"GIT_INDEX_FILE": str(tmp_index)}
    repo.git.add("new.txt", env=env)
    commit = repo.git.commit_tree(repo.git.write_tree(env=env).strip(), "-p", head(root), "-m", "M44: x").strip()
    repo.git.update_ref("HEAD", commit)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file.write_text(f"{dead.pid}\n", encoding="utf-8")
    lock.write_text("", encoding="utf-8")
    assert "new.txt" in git(root, "status", "--porcelain")  # the stale index: new.txt looks deleted+untracked
    vcs.clear_stale_close_lock(repo)
    assert git(root, "status", "--porcelain") == ""
    assert not lock.exists() and not tmp_index.exists() and not pid_file.exists()
    assert os.path.exists(root / ".git" / "index")
