"""`milestone verify M44` (issue 11): from a fresh clone, with nothing but git and the tool, a closed milestone's ledger
chain, its head against the closing commit's trailer, its evidence and its documents; each tampering is named; a
rebase or cherry-pick that moves the closing commit changes nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from _close_support import git, make_run
from conftest import run_subprocess

from tunix_rt import evidence, ledger, milestones
from tunix_rt.project import Project

PHASE = "ProjectFiles/Milestones/Phase1"
LEDGER = f"{PHASE}/M44.ledger.jsonl"


@pytest.fixture
def closed(project: Project, run_cli) -> Project:
    # Real gates, so the documents show what happened once on this machine (what the close records).
    import sys

    settings = project.root / "milestone.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + f'\n[close]\ntest_command = "{sys.executable} -c pass"\n',
                        encoding="utf-8")
    (project.root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: ok\n        name: ok\n        language: system\n"
        f"        entry: {sys.executable} -c pass\n        types: [text]\n", encoding="utf-8")
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", "gates")
    project = Project.find(project.root)
    assert run_cli("start", "M44", "--title", "Verifiable").code == 0
    (project.root / "train.py").write_text("print('train')\n", encoding="utf-8")
    assert run_cli("log", "entry", "-t", "train", "--tool", "write", "-p", "p", "--file", "train.py",
                   "--status", "completed").code == 0
    make_run(project, "M44", "m44_v1", steps=10)
    weights = project.runs_dir / "m44_v1" / "final_model" / "model.safetensors"  # ignored by git: not committed
    weights.parent.mkdir()
    weights.write_bytes(b"\x00" * 4096)
    evidence.write_artifacts(project, "m44_v1", project.runs_dir / "m44_v1")
    out = run_cli("close", "--summary", "A milestone anyone can check.")
    assert out.code == 0, out
    summary = (project.root / f"{PHASE}/M44_summary.md").read_text(encoding="utf-8")
    assert "-c pass" in summary and "passed" in summary  # the gates' outcome is in it
    return project


def _verify(root: Path) -> subprocess.CompletedProcess:
    return run_subprocess(root, "verify", "M44")


def test_a_closed_milestone_verifies_from_a_fresh_clone(closed: Project, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(closed.root), str(clone)], check=True)
    done = _verify(clone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    fresh = "a fresh render of the ledger, the evidence and the close's record, byte for byte"
    for expected in ("hash chain intact", "Milestone-Ledger-Head of commit", "files match their recorded sha256",
                     "a fresh render of the ledger, byte for byte", f"M44_summary.md: {fresh}",
                     f"M44_audit.md: {fresh}", f"(M44 block): {fresh}"):
        assert expected in done.stdout, (expected, done.stdout)
    assert ("submission_runs/m44_v1/final_model/model.safetensors: not in this clone (ignored by git), digest "
            "recorded") in done.stdout
    head = ledger.head((clone / LEDGER).read_bytes())
    assert git(clone, "log", "-1", "--format=%(trailers:key=Milestone-Ledger-Head,valueonly)").strip() == head
    report = json.loads(run_subprocess(clone, "verify", "M44", "--json").stdout)
    assert report["ok"] is True and report["ledger_head"] == head


def _forge_chained_line(path: Path) -> None:
    data = path.read_bytes()
    event = json.loads(data.splitlines()[-2])  # an entry or run event, re-sent with a correct link
    event.update(id="feedfacefeedface", prev=ledger.head(data))
    path.write_bytes(data + json.dumps(event, separators=(",", ":")).encode("utf-8") + b"\n")


TAMPERING = {
    "summary edited": (lambda root: _append(root / f"{PHASE}/M44_summary.md", "\nAll tests passed.\n"),
                       "M44_summary.md: differs from a fresh render"),
    "audit edited": (lambda root: _append(root / f"{PHASE}/M44_audit.md", "\nok\n"),
                     "M44_audit.md: differs from a fresh render"),
    "master block edited": (lambda root: _replace(root / "PROJECT.md", "**M44", "**M44 (improved)"),
                            "PROJECT.md (M44 block): "),
    "view edited": (lambda root: _append(root / f"{PHASE}/M44_toolcalls.md", "\n### Entry 2 — invented\n"),
                    "M44_toolcalls.md: differs from a fresh render"),
    "evidence edited": (lambda root: _replace(root / "submission_runs/m44_v1/metrics.jsonl", '"loss"', '"loss" ')
                        , "metrics.jsonl: differs from the sha256 its run recorded"),
    "last ledger line cut": (lambda root: _cut_last_line(root / LEDGER), "ledger head: the ledger ends at"),
    "chained line forged at the end": (lambda root: _forge_chained_line(root / LEDGER),
                                      "ledger head: the ledger ends at"),
    "middle ledger line edited": (lambda root: _replace(root / LEDGER, '"title":"train"', '"title":"trained"'),
                                  "M44.ledger.jsonl: 4: the hash chain breaks here"),
}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _cut_last_line(path: Path) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))


@pytest.mark.parametrize("case", list(TAMPERING), ids=list(TAMPERING))
def test_each_tampering_is_named_and_fails_the_verification(closed: Project, case: str) -> None:
    tamper, named = TAMPERING[case]
    tamper(closed.root)
    done = _verify(closed.root)
    assert done.returncode == 1, (case, done.stdout, done.stderr)
    assert named in done.stdout, (case, done.stdout)
    assert done.stderr.count("\n") == 1 and "check(s) failed" in done.stderr


def test_a_rebase_and_a_cherry_pick_that_move_the_closing_commit_change_nothing(closed: Project) -> None:
    root = closed.root
    closing = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "other", "HEAD~1")
    (root / "NOTES.md").write_text("meanwhile\n", encoding="utf-8")
    git(root, "add", "NOTES.md")
    git(root, "commit", "-q", "-m", "meanwhile")
    git(root, "checkout", "-q", "-")
    git(root, "rebase", "-q", "other")
    moved = git(root, "rev-parse", "HEAD").strip()
    assert moved != closing
    done = _verify(root)
    assert done.returncode == 0 and f"commit {moved[:12]}" in done.stdout, done.stdout + done.stderr
    assert run_subprocess(root, "show", "M44").returncode == 0
    # The same commit cherry-picked onto a fresh branch from before it.
    git(root, "checkout", "-q", "-b", "picked", "other")
    git(root, "cherry-pick", moved)
    picked = git(root, "rev-parse", "HEAD").strip()
    done = _verify(root)
    assert done.returncode == 0 and f"commit {picked[:12]}" in done.stdout, done.stdout + done.stderr


def test_a_newer_template_leaves_the_committed_documents_verified_and_an_edit_still_fails(closed: Project) -> None:
    # A later version of the tool renders the view and the summary differently: what the closing commit holds
    # still verifies, and says so; a hand edit after that is still caught.
    templates = closed.root / "templates"
    templates.mkdir(exist_ok=True)
    for name in ("toolcalls_entry.md.j2", "summary.md.j2"):
        packaged = (Path(__file__).resolve().parents[1] / "templates" / name).read_text(encoding="utf-8")
        (templates / name).write_text(packaged.replace("---", "- - -", 1) + "\nnewer\n", encoding="utf-8")
    done = _verify(closed.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{PHASE}/M44_toolcalls.md: the bytes of the closing commit" in done.stdout
    assert f"{PHASE}/M44_summary.md: the bytes of the closing commit" in done.stdout
    assert "this version of the tool renders it differently" in done.stdout
    view = closed.root / f"{PHASE}/M44_toolcalls.md"
    view.write_text(view.read_text(encoding="utf-8").replace("train", "trained"), encoding="utf-8")
    done = _verify(closed.root)
    assert done.returncode == 1
    assert f"FAIL  {PHASE}/M44_toolcalls.md: differs from a fresh render of the ledger" in done.stdout


def test_an_open_milestone_verifies_what_it_has(project: Project, run_cli) -> None:
    assert run_cli("start", "M44", "--title", "Open").code == 0
    milestones.add_entry(project, "M44", title="t", tools=["x"], purpose="p")
    done = _verify(project.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "open: no closing commit to hold it yet" in done.stdout


def test_verify_still_takes_a_run(closed: Project) -> None:
    done = run_subprocess(closed.root, "verify", "m44_v1")
    assert done.returncode == 0 and "files match" in done.stdout, done.stdout + done.stderr


def test_a_squash_merge_that_keeps_the_trailers_still_verifies(project: Project, run_cli) -> None:
    root = project.root
    git(root, "checkout", "-q", "-b", "feature")
    assert run_cli("start", "M44", "--title", "Squashed").code == 0
    (root / "train.py").write_text("print('train')\n", encoding="utf-8")
    assert run_cli("log", "entry", "-t", "train", "--tool", "write", "-p", "p", "--file", "train.py",
                   "--status", "completed").code == 0
    assert run_cli("close", "--skip-hooks", "--summary", "Squash me.").code == 0
    trailers = [line for line in git(root, "log", "-1", "--format=%B").splitlines() if line.startswith("Milestone")]
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--squash", "feature")
    message = "Squashed feature (#12)\n\n* M44: Squashed\n\n" + "\n".join(trailers) + "\n\nCo-authored-by: A <a@b>\n"
    git(root, "commit", "-q", "-m", message)
    git(root, "branch", "-q", "-D", "feature")
    done = _verify(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_subprocess(root, "show", "M44").returncode == 0


# --- close --sign: a signed in-toto statement anyone can check ------------------------------------


def _ssh_signing(root: Path, tmp_path: Path, principal: str = "test@example.com") -> Path:
    key = tmp_path / f"key-{principal.split('@')[0]}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)], check=True)
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingkey", str(key))
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"{principal} {Path(f'{key}.pub').read_text().strip()}\n", encoding="utf-8")
    return allowed


@pytest.fixture
def signed(project: Project, run_cli, tmp_path: Path) -> tuple[Project, Path]:
    allowed = _ssh_signing(project.root, tmp_path)
    assert run_cli("start", "M44", "--title", "Signed").code == 0
    (project.root / "train.py").write_text("print('train')\n", encoding="utf-8")
    assert run_cli("log", "entry", "-t", "train", "--tool", "write", "-p", "p", "--file", "train.py",
                   "--status", "completed").code == 0
    make_run(project, "M44", "m44_v1", steps=10)
    assert run_cli("accept", "train.final_loss < 5").code == 0
    out = run_cli("close", "--skip-hooks", "--sign", "--summary", "Signed and sealed.")
    assert out.code == 0, out
    return project, allowed


def test_a_signed_close_commits_an_in_toto_statement_that_verifies_from_a_clone(signed, tmp_path: Path) -> None:
    project, allowed = signed
    statement_rel = f"{PHASE}/M44.intoto.json"
    committed = git(project.root, "show", "--name-only", "--format=", "HEAD").split()
    assert statement_rel in committed and f"{statement_rel}.sig" in committed
    statement = json.loads((project.root / statement_rel).read_text(encoding="utf-8"))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    names = {s["name"] for s in statement["subject"]}
    assert {LEDGER, f"{PHASE}/M44_summary.md", f"{PHASE}/M44_audit.md", f"{PHASE}/M44_toolcalls.md", "PROJECT.md",
            "submission_runs/m44_v1/metrics.jsonl"} <= names
    predicate = statement["predicate"]
    assert predicate["milestone"] == "M44" and predicate["ledger_head"] == ledger.head((project.root / LEDGER).read_bytes())
    assert predicate["thresholds"][0]["expression"] == "train.final_loss<5" and predicate["thresholds"][0]["met"]
    assert predicate["runs"][0]["id"] == "m44_v1"

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    git(clone, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    done = _verify(clone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "good signature by test@example.com" in done.stdout
    # Without this tool: OpenSSH alone checks the statement.
    with open(clone / statement_rel, "rb") as handle:
        independent = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "test@example.com",
                                      "-n", "milestone", "-s", str(clone / f"{statement_rel}.sig")], stdin=handle,
                                     capture_output=True, text=True)
    assert independent.returncode == 0 and "Good" in independent.stdout, independent


def test_a_statement_signed_by_a_key_nobody_allowed_fails(signed, tmp_path: Path) -> None:
    project, _ = signed
    stranger = tmp_path / "strangers"
    other = tmp_path / "other-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    stranger.write_text(f"someone@example.com {Path(f'{other}.pub').read_text().strip()}\n", encoding="utf-8")
    git(project.root, "config", "gpg.ssh.allowedSignersFile", str(stranger))
    done = _verify(project.root)
    assert done.returncode == 1 and "does not list" in done.stdout, done.stdout


def test_an_edited_subject_fails_the_statement_too(signed) -> None:
    project, allowed = signed
    git(project.root, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    _append(project.root / "submission_runs/m44_v1/training_log.txt", "step 2 loss 0.1\n")
    done = _verify(project.root)
    assert done.returncode == 1
    assert "training_log.txt: differs from the sha256 in" in done.stdout, done.stdout


def test_sign_without_ssh_signing_set_up_is_refused_before_anything_runs(project: Project, run_cli) -> None:
    assert run_cli("start", "M44", "--title", "Unsigned").code == 0
    milestones.add_entry(project, "M44", title="t", tools=["x"], purpose="p", status="completed")
    head = git(project.root, "rev-parse", "HEAD")
    out = run_cli("close", "--skip-hooks", "--sign")
    assert out.code == 2 and out.err.count("\n") == 1 and "gpg.format ssh" in out.err, out
    assert git(project.root, "rev-parse", "HEAD") == head
    assert not (project.root / f"{PHASE}/M44_summary.md").exists()
