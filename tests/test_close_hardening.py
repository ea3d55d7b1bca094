"""Close refuses what git would refuse, scans exactly what it commits, and never loses or sweeps in a user's bytes."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _close_support import git, head, index_state, make_run
from tunix_rt import milestones
from tunix_rt.project import Project

TOKEN = "hf_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"


@pytest.fixture
def m44(project: Project) -> Project:
    milestones.start(project, "M44", "Hardening", phase=4)
    (project.root / "train.py").write_text("print('train')\n", encoding="utf-8")
    milestones.add_entry(project, "M44", title="work", tools=["write"], purpose="p", files=["train.py"],
                         status="completed")
    return project


def _settings(project: Project, text: str) -> Project:
    path = project.root / "milestone.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")
    return Project.find(project.root)


def _unchanged(project: Project, before: tuple[str, str, bytes]) -> None:
    assert (head(project.root), index_state(project.root), project.ledger("M44").read_bytes()) == before


def _state(project: Project) -> tuple[str, str, bytes]:
    return head(project.root), index_state(project.root), project.ledger("M44").read_bytes()


def test_a_merge_in_progress_and_unresolved_conflicts_are_refused_up_front(m44: Project, run_cli) -> None:
    root = m44.root
    git(root, "add", "-A")
    git(root, "commit", "-qm", "work")
    git(root, "checkout", "-qb", "other")
    (root / "README.md").write_text("# other\n", encoding="utf-8")
    git(root, "commit", "-qam", "other")
    git(root, "checkout", "-q", "main")
    (root / "README.md").write_text("# main\n", encoding="utf-8")
    git(root, "commit", "-qam", "main")
    subprocess.run(["git", "merge", "other"], cwd=root, capture_output=True)  # conflicts
    before = _state(m44)
    out = run_cli("close", "--skip-hooks")
    assert out.code == 2 and len(out.err.strip().splitlines()) == 1
    assert "a merge is in progress" in out.err
    _unchanged(m44, before)
    (root / ".git" / "MERGE_HEAD").unlink()  # the conflict markers stay in the index
    out = run_cli("close", "--skip-hooks")
    assert out.code == 2 and "unresolved conflicts in README.md" in out.err


def test_staged_deletion_and_rename_are_committed(m44: Project, run_cli) -> None:
    root = m44.root
    (root / "old.txt").write_text("old\n", encoding="utf-8")
    (root / "gone.txt").write_text("gone\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "two files")
    milestones.load(m44, "M44")
    git(root, "mv", "old.txt", "new.txt")
    git(root, "rm", "-q", "gone.txt")
    out = run_cli("close", "--skip-hooks")
    assert out.code == 0, out
    tree = git(root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert "new.txt" in tree and "old.txt" not in tree and "gone.txt" not in tree
    assert git(root, "status", "--porcelain") == ""


def test_a_file_staged_before_start_and_unchanged_is_neither_committed_nor_counted(project: Project, run_cli) -> None:
    root = project.root
    (root / "staged.txt").write_text("staged for another reason\n", encoding="utf-8")
    git(root, "add", "staged.txt")
    milestones.start(project, "M44", "Scope", phase=4)
    (root / "work.py").write_text("x = 1\n", encoding="utf-8")
    out = run_cli("close", "--skip-hooks")
    assert out.code == 0, out
    committed = git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert "staged.txt" not in committed and "work.py" in committed
    assert git(root, "status", "--porcelain", "--", "staged.txt") == "A  staged.txt\n"  # still staged, as it was
    summary = (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").read_text(encoding="utf-8")
    assert "unchanged since (not counted, not committed): `staged.txt`" in summary
    files = len(committed)
    assert f"{files} files changed" in git(root, "show", "--shortstat", "--format=", "HEAD")


def test_another_milestones_documents_are_never_swept_into_a_close(project: Project, run_cli) -> None:
    root = project.root
    milestones.start(project, "M43", "Earlier", phase=4)
    assert run_cli("close", "--skip-hooks", "--milestone", "M43").code == 0
    milestones.start(project, "M44", "Later", phase=4)
    plan43 = root / "ProjectFiles/Milestones/Phase4/M43_plan.md"
    plan43.write_text(plan43.read_text(encoding="utf-8") + "\nA late note.\n", encoding="utf-8")
    out = run_cli("close", "--skip-hooks")
    assert out.code == 0, out
    assert "ProjectFiles/Milestones/Phase4/M43_plan.md belongs to M43: left out of this close" in out.err
    assert "M43_plan.md" not in git(root, "show", "--name-only", "--format=", "HEAD")
    assert git(root, "status", "--porcelain").strip() == "M ProjectFiles/Milestones/Phase4/M43_plan.md"


def test_gpgsign_is_honoured(m44: Project, run_cli, tmp_path: Path) -> None:
    root = m44.root
    git(root, "config", "commit.gpgsign", "true")
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingkey", str(tmp_path / "missing_key"))
    before = _state(m44)
    out = run_cli("close", "--skip-hooks")
    assert out.code == 1 and "git commit-tree failed" in out.err  # git itself would refuse: so does close
    _unchanged(m44, before)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    git(root, "config", "user.signingkey", str(key))
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"test@example.com {(tmp_path / 'key.pub').read_text().strip()}\n", encoding="utf-8")
    git(root, "config", "gpg.ssh.allowedSignersFile", str(signers))
    out = run_cli("close", "--skip-hooks")
    assert out.code == 0, out
    assert git(root, "log", "-1", "--format=%G?").strip() == "G"


def test_a_hanging_test_command_is_stopped_and_the_ledger_is_free_meanwhile(m44: Project, run_cli) -> None:
    # The test command logs an entry while close runs it (as an agent's hook would): it must not wait for
    # the ledger lock, and the close that follows includes the entry.
    project = _settings(m44, '[close]\ntimeout_s = 60\ntest_command = "%s -m tunix_rt.cli log entry --title During '
                             '--tool run --purpose p --status completed --milestone M44"\n' % sys.executable)
    out = run_cli("close", "--skip-hooks")
    assert out.code == 0, out
    assert [e.title for e in milestones.load(project, "M44").entries] == ["work", "During"]
    assert "During" in (m44.root / "ProjectFiles/Milestones/Phase4/M44_toolcalls.md").read_text(encoding="utf-8")


def test_a_test_command_past_the_time_limit_fails_the_close(m44: Project, run_cli) -> None:
    _settings(m44, f'[close]\ntimeout_s = 2\ntest_command = "{sys.executable} -c \\"import time; time.sleep(120)\\""\n')
    before = _state(m44)
    started = time.monotonic()
    out = run_cli("close", "--skip-hooks")
    assert out.code == 1 and "test command failed (exit 124)" in out.err and "time limit of 2 s" in out.err
    assert time.monotonic() - started < 60
    _unchanged(m44, before)


def test_the_ledger_lock_is_free_while_hooks_run(m44: Project) -> None:
    root = m44.root
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: slow\n        name: slow\n        language: system\n"
        f"        entry: {sys.executable} -c \"import time; time.sleep(4)\"\n        types: [text]\n", encoding="utf-8")
    from tunix_rt import closing

    done: dict[str, float] = {}

    def agent() -> None:
        time.sleep(1.5)  # inside the hook run
        t0 = time.monotonic()
        milestones.add_entry(m44, "M44", title="agent call", tools=["Bash"], purpose="p", status="completed")
        done["wait"] = time.monotonic() - t0

    thread = threading.Thread(target=agent)
    thread.start()
    result = closing.close(m44, "M44")
    thread.join()
    assert done["wait"] < 2.0  # not held up by the 4 s hook
    assert result.commit == head(root)
    assert "agent call" in git(root, "show", "HEAD:ProjectFiles/Milestones/Phase4/M44_toolcalls.md")


def test_a_secret_written_by_a_hook_is_caught_in_the_exact_blobs(m44: Project, run_cli) -> None:
    root = m44.root
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: leak\n        name: leak\n        language: system\n"
        f"        entry: {sys.executable} -c \"open('train.py','a').write('HF_TOKEN=hf_' + '{TOKEN[3:]}\\\\n')\"\n"
        "        pass_filenames: false\n        always_run: true\n", encoding="utf-8")
    before = _state(m44)
    out = run_cli("close")
    assert out.code == 2 and "train.py:2 holds a secret" in out.err and TOKEN not in out.err
    _unchanged(m44, before)
    assert not (root / "ProjectFiles/Milestones/Phase4/M44_summary.md").exists()
    assert "No milestone complete yet" in (root / "PROJECT.md").read_text(encoding="utf-8")


def test_a_secret_inside_a_binary_file_is_refused(m44: Project, run_cli) -> None:
    with open(m44.root / "state.pkl", "wb") as handle:
        pickle.dump({"tokenizer": {"auth": f"HF_TOKEN={TOKEN}"}, "weights": bytes(range(256))}, handle)
    out = run_cli("close", "--skip-hooks")
    assert out.code == 2 and "state.pkl" in out.err and "holds a secret" in out.err


def test_a_master_doc_linked_outside_the_repository_is_refused(m44: Project, run_cli, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text("# private notes\nsecret plans\n", encoding="utf-8")
    master = m44.root / "PROJECT.md"
    master.unlink()
    master.symlink_to(outside)
    before = _state(m44)
    out = run_cli("close", "--skip-hooks", "--force")
    assert out.code == 2 and "PROJECT.md is a symbolic link" in out.err
    _unchanged(m44, before)
    assert outside.read_text(encoding="utf-8") == "# private notes\nsecret plans\n"


def test_a_failing_hook_restores_nothing_and_says_where_the_bytes_from_before_are(m44: Project, run_cli) -> None:
    root = m44.root
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: scribble\n        name: scribble\n        language: system\n"
        f"        entry: {sys.executable} -c \"import sys; [open(p,'a').write('# edited meanwhile\\\\n') "
        "for p in sys.argv[1:]]; sys.exit(1)\"\n        types: [python]\n", encoding="utf-8")
    out = run_cli("close")
    assert out.code == 1 and "it rewrote train.py" in out.err
    assert (root / "train.py").read_text(encoding="utf-8").startswith("print('train')\n# edited meanwhile")
    assert (root / ".git/tunix-rt/before-hooks/train.py").read_text(encoding="utf-8") == "print('train')\n"


def test_a_summary_close_did_not_write_is_kept_unless_forced(m44: Project, run_cli) -> None:
    summary = m44.root / "ProjectFiles/Milestones/Phase4/M44_summary.md"
    summary.write_text("# M44 hand-written summary\n\n142 careful lines.\n", encoding="utf-8")
    out = run_cli("close", "--skip-hooks")
    assert out.code == 2 and "M44_summary.md was not generated by close: close will not overwrite it" in out.err
    assert summary.read_text(encoding="utf-8").startswith("# M44 hand-written summary")
    out = run_cli("close", "--skip-hooks", "--force")
    assert out.code == 0, out
    audit = (m44.root / "ProjectFiles/Milestones/Phase4/M44_audit.md").read_text(encoding="utf-8")
    assert "replaced what close did not generate: ProjectFiles/Milestones/Phase4/M44_summary.md" in audit
    git(m44.root, "show", "HEAD~0:ProjectFiles/Milestones/Phase4/M44_summary.md")


def test_a_hand_written_master_doc_block_is_kept_unless_forced(m44: Project, run_cli) -> None:
    master = m44.root / "PROJECT.md"
    master.write_text(master.read_text(encoding="utf-8") + "\n**M44 Enhancements:** written by a person\n- kept\n",
                      encoding="utf-8")
    out = run_cli("close", "--skip-hooks")
    assert out.code == 2 and "PROJECT.md holds a M44 block that close did not generate" in out.err


def test_close_with_runs_and_an_eval_reads_the_marked_final_line(m44: Project) -> None:
    """A plugin that marks its final metrics line (`"final": true`) is read through the contract."""
    run = make_run(m44, "M44", "m44_v1")
    from tunix_rt import evidence

    metrics = m44.root / run.path / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines()
    final = evidence.FinalMetrics.model_validate_json(lines[-1])
    assert final.final is True and evidence.read_metrics(metrics).final == final
