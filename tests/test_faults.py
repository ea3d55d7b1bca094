"""Faults: kill -9 at seeded random moments, a full disk and read-only folders never lose or corrupt anything.

kill -9 trials (50 in all, seeded): 30 of `log entry`/`log update`, 12 of `close`, 8 of `run train`.
After each: every ledger reads, every event a killed writer reported as done is there, entry numbers
have no gap, the view catches up byte for byte; a killed `close` re-runs to exactly one commit with
the `Milestone:` trailer; a killed run never leaves evidence that `verify` passes unless it is whole.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, git
from tunix_rt import ledger, milestones, scaffold
from tunix_rt.models import EntryAdded, EntryUpdated, MilestoneClosed, RunRecorded
from tunix_rt.project import Project

MILESTONE = str(Path(sys.executable).with_name("milestone"))
PHASE = "ProjectFiles/Milestones/Phase1"
SEED = 20260108


def kill_at(cmd: list[str], cwd: Path, delay: float, *, group: bool) -> tuple[str, int]:
    """Starts `cmd`, SIGKILLs it (or its whole process group, git children included) after `delay` s."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    if not group:  # children of a lone kill (git, hooks) finish on their own; wait for them
        try:
            os.killpg(proc.pid, 0)
            for _ in range(100):
                time.sleep(0.05)
                os.killpg(proc.pid, 0)
        except ProcessLookupError:
            pass
    return out, proc.returncode


def kill_after(cmd: list[str], cwd: Path, ready, delay: float) -> int:
    """Starts `cmd`; once `ready()` is true (polled every 10 ms), SIGKILLs its process group after `delay` s."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=60)


def new_project(root: Path) -> Project:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Fault Tester")
    git(root, "config", "user.email", "faults@example.com")
    git(root, "config", "commit.gpgsign", "false")
    project = Project.find(root)
    scaffold.init(project)
    (root / "README.md").write_text("# faults\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return project


def assert_view_is_a_full_render(project: Project, mid: str = "M44") -> None:
    view = project.root / PHASE / f"{mid}_toolcalls.md"
    shown = view.read_bytes()
    (project.git_dir / "tunix-rt" / "render" / f"{mid}.json").unlink(missing_ok=True)
    milestones.render_views(project, mid)
    assert view.read_bytes() == shown


# --- log entry / log update ------------------------------------------------------------------------

LOG_WORKER = """
import sys
from tunix_rt import cli
big = "x" * int(sys.argv[1])
for i in range(10_000):
    if i % 3 == 2:
        if cli.run(["log", "update", "1", "--section", f"Notes=u{i}"]) != 0:
            sys.exit(3)
        print(f"u{i}", flush=True)
    else:
        if cli.run(["log", "entry", "-t", f"k{i}", "--tool", "x", "-p", "kill", "--section", f"Results={big}{i}"]) != 0:
            sys.exit(3)
"""


@pytest.mark.slow
def test_kill_log_writers_at_random_moments(project, monkeypatch) -> None:
    monkeypatch.chdir(project.root)
    milestones.start(project, "M44", "kill -9 log writers")
    milestones.add_entry(project, "M44", title="seed", tools=["x"], purpose="seed")
    path = project.root / PHASE / "M44.ledger.jsonl"
    rng = random.Random(SEED)
    acknowledged_entries: set[int] = {1}
    acknowledged_updates: set[str] = set()
    killed: list[int] = []
    for trial in range(30):
        size = rng.choice([10, 2_000, 200_000])  # large sections widen the window inside a write
        out, code = kill_at([sys.executable, "-c", LOG_WORKER, str(size)], project.root, rng.uniform(0.2, 1.2),
                            group=bool(trial % 2))
        killed.append(code)
        for line in out.splitlines():  # "N" from `log entry`; "updated entry 1" then our "uI" from an update
            if line.startswith("updated entry"):
                continue
            (acknowledged_updates.add(line) if line.startswith("u") else acknowledged_entries.add(int(line)))
        events = ledger.read(path)  # readable: a torn tail is tolerated, a malformed complete line is not
        numbers = [e.entry.number for e in events if isinstance(e, EntryAdded)]
        assert numbers == list(range(1, len(numbers) + 1)), f"trial {trial}: gap or duplicate"
        assert acknowledged_entries <= set(numbers), f"trial {trial}: an acknowledged entry was lost"
        updates = {item for e in events if isinstance(e, EntryUpdated) for s in e.sections for item in s.items}
        assert acknowledged_updates <= updates, f"trial {trial}: an acknowledged update was lost"
        for e in events:  # every complete event is whole, not a prefix of what was written
            if isinstance(e, EntryAdded) and e.entry.title.startswith("k"):
                assert e.entry.sections[0].items[0].endswith(e.entry.title[1:]), f"trial {trial}"
        if trial % 5 == 4:  # the next ordinary write repairs whatever the kill left behind
            entry = milestones.add_entry(project, "M44", title="after kill", tools=["x"], purpose="repair")
            assert entry.number == len(numbers) + 1
            acknowledged_entries.add(entry.number)
            assert_view_is_a_full_render(project)
    assert sum(code == -signal.SIGKILL for code in killed) >= 25, killed  # the trials really were kills
    milestones.add_entry(project, "M44", title="last", tools=["x"], purpose="repair")
    assert_view_is_a_full_render(project)


# --- close -------------------------------------------------------------------------------------


def trailer_commits(root: Path, mid: str = "M44") -> list[str]:
    out = git(root, "log", "--format=%H%x00%B%x01", "--all")
    found = []
    for record in out.split("\x01"):
        if "\x00" in record:
            sha, body = record.strip().split("\x00", 1)
            if f"Milestone: {mid}" in body.splitlines():
                found.append(sha)
    return found


def closable(root: Path) -> Project:
    project = new_project(root)
    milestones.start(project, "M44", "kill -9 close")
    (root / "work.py").write_text("print('work')\n", encoding="utf-8")
    milestones.add_entry(project, "M44", title="work", tools=["write"], purpose="work", files=["work.py"], status="completed")
    return project


@pytest.mark.slow
def test_kill_close_at_random_moments_then_rerun(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TUNIX_RT_NOW", "2026-01-08T12:00:00Z")
    rng = random.Random(SEED + 1)
    outcomes = []
    for trial in range(12):
        project = closable(tmp_path / f"close{trial}")
        root = project.root
        _, code = kill_at([MILESTONE, "close", "--skip-hooks"], root, rng.uniform(0.05, 0.9), group=bool(trial % 2))
        outcomes.append(code)
        state = ledger.load(project.ledger("M44"))  # readable whatever the moment
        assert [e.number for e in state.entries] == [1]
        rerun = subprocess.run([MILESTONE, "close", "--skip-hooks"], cwd=root, capture_output=True, text=True, timeout=120)
        if rerun.returncode != 0:
            assert rerun.returncode == 2 and "already closed" in rerun.stderr, (trial, rerun.stderr)
            assert "Traceback" not in rerun.stderr
        commits = trailer_commits(root)
        assert len(commits) == 1, f"trial {trial}: {len(commits)} closing commits"
        assert git(root, "rev-parse", "HEAD").strip() == commits[0]
        assert ledger.load(project.ledger("M44")).status == "closed"
        closed_events = [e for e in ledger.read(project.ledger("M44")) if isinstance(e, MilestoneClosed)]
        assert len(closed_events) == 1, f"trial {trial}: closed {len(closed_events)} times"
        committed = git(root, "show", "--name-only", "--format=", "HEAD").split()
        for name in ("work.py", f"{PHASE}/M44_summary.md", f"{PHASE}/M44.ledger.jsonl", f"{PHASE}/M44_toolcalls.md"):
            assert name in committed, (trial, name)
        assert git(root, "show", f"HEAD:{PHASE}/M44.ledger.jsonl").count("milestone_closed") == 1
        assert not (Path(project.git_dir) / "index.lock").exists()
        assert git(root, "status", "--porcelain", "--", PHASE, "work.py") == "", trial
        fsck = subprocess.run(["git", "fsck", "--no-progress", "--no-dangling"], cwd=root, capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        shown = json.loads(subprocess.run([MILESTONE, "show", "--json"], cwd=root, capture_output=True, text=True).stdout)
        assert shown["commit"] == commits[0]
    assert any(code == -signal.SIGKILL for code in outcomes), "no trial was actually killed"


# --- run train ---------------------------------------------------------------------------------

TINY = """\
model: {tiny: {arch: gpt2, n_layer: 1, n_embd: 32, n_head: 2, vocab_size: 300}}
data: {train: traces.jsonl, eval: eval.jsonl, eval_split: 0.1}
training: {device: cpu, batch_size: 8, max_seq_length: 96, max_steps: 4, learning_rate: 2.0e-3, logging_steps: 1}
eval: {max_new_tokens: 4, batch_size: 8}
seed: 0
"""


@pytest.mark.slow
def test_kill_run_train_at_random_moments(tmp_path, monkeypatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.setenv("TUNIX_RT_NOW", "2026-01-08T12:00:00Z")
    rng = random.Random(SEED + 2)
    project = new_project(tmp_path / "runs")
    root = project.root
    milestones.start(project, "M44", "kill -9 runs")
    for name in ("traces.jsonl", "eval.jsonl"):
        shutil.copy(DATA / "runs" / name, root / name)
    (root / "tiny.yaml").write_text(TINY, encoding="utf-8")
    path = project.ledger("M44")
    outcomes: list[tuple[int, bool, int]] = []
    for trial in range(8):
        run_id = f"m44_k{trial}"
        cmd = [MILESTONE, "run", "train", "--config", "tiny.yaml", "--run", run_id]
        folder = root / "submission_runs" / run_id
        if trial % 2:  # anywhere from start-up to training
            _, code = kill_at(cmd, root, rng.uniform(0.5, 6.0), group=trial % 4 == 1)
        else:  # while the evidence is being finished: after the training loop reports done
            log_file = folder / "training_log.txt"
            code = kill_after(cmd, root, lambda: log_file.is_file() and "done:" in log_file.read_text(errors="replace"),
                              rng.uniform(0.0, 0.8))
        events = ledger.read(path)
        numbers = [e.entry.number for e in events if isinstance(e, EntryAdded)]
        assert numbers == list(range(1, len(numbers) + 1))
        recorded = [e.run for e in events if isinstance(e, RunRecorded) and e.run.id == run_id]
        verify = subprocess.run([MILESTONE, "verify", run_id], cwd=root, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in verify.stderr, verify.stderr
        if (folder / "artifacts.json").is_file() and verify.returncode == 0:
            # Presented as complete: the manifest must be whole and say how the run ended.
            manifest = json.loads((folder / "run_manifest.json").read_text(encoding="utf-8"))
            assert manifest["run_id"] == run_id and manifest["status"] in ("completed", "failed", "interrupted")
        else:
            # Not whole: nothing may claim it is (no completed run record), and verify must say so.
            assert verify.returncode != 0, (trial, verify.stdout)
            assert len(verify.stderr.strip().splitlines()) <= 1, verify.stderr
            assert not any(r.status == "completed" for r in recorded), (trial, recorded)
        if code == 0:
            assert recorded and recorded[-1].status == "completed"
        outcomes.append((code, (folder / "artifacts.json").is_file(), verify.returncode))
    assert sum(code == -signal.SIGKILL for code, _, _ in outcomes) >= 5, outcomes
    assert_view_is_a_full_render(project)


# --- a full disk, a read-only folder -------------------------------------------------------------


def entry_args(text: str = "x") -> list[str]:
    return ["log", "entry", "-t", "disk", "--tool", "x", "-p", "full", "--section", f"Results={text}"]


def settle_after_failure(project: Project, before_events: int, path: Path) -> None:
    """After space comes back: the ledger reads, the next entry takes the next number, the view is whole."""
    events = ledger.read(path)
    assert len(events) == before_events, "a failed write left an event behind"
    numbers = [e.entry.number for e in events if isinstance(e, EntryAdded)]
    done = subprocess.run([MILESTONE, *entry_args()], cwd=project.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(numbers) + 1
    assert_view_is_a_full_render(project)


def assert_one_line_error(done: subprocess.CompletedProcess) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr


@pytest.fixture
def tmpfs_phase(project, monkeypatch):
    """The milestone folder on a 256 KiB tmpfs (needs mount rights; skipped without them)."""
    monkeypatch.chdir(project.root)
    milestones.start(project, "M44", "disk full")
    for i in range(3):
        milestones.add_entry(project, "M44", title=f"e{i}", tools=["x"], purpose="p")
    folder = project.root / PHASE
    keep = project.root.parent / "phase-copy"
    shutil.copytree(folder, keep)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here; see the RLIMIT_FSIZE test")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not permitted'}); see the RLIMIT_FSIZE test")
    try:
        for child in keep.iterdir():
            shutil.copy2(child, folder / child.name)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_while_logging(project, tmpfs_phase) -> None:
    path = tmpfs_phase / "M44.ledger.jsonl"
    before = path.read_bytes()
    view_before = (tmpfs_phase / "M44_toolcalls.md").read_bytes()
    filler = fill(tmpfs_phase)
    # A section larger than any slack in the file's last page, so the append itself needs new space.
    done = subprocess.run([MILESTONE, *entry_args("y" * 20_000)], cwd=project.root, capture_output=True, text=True)
    assert_one_line_error(done)
    assert "No space left" in done.stderr, done.stderr
    assert ledger.read(path) == ledger.parse(path, before)  # a failed append leaves no partial bytes
    assert (tmpfs_phase / "M44_toolcalls.md").read_bytes() == view_before
    filler.unlink()
    settle_after_failure(project, len(ledger.parse(path, before)), path)


def test_disk_full_while_closing(project, tmpfs_phase) -> None:
    (project.root / "work.py").write_text("print(1)\n", encoding="utf-8")
    milestones.update_entry(project, "M44", None, status="completed")
    for n in (1, 2):
        milestones.update_entry(project, "M44", n, status="completed")
    path = tmpfs_phase / "M44.ledger.jsonl"
    before, head = path.read_bytes(), git(project.root, "rev-parse", "HEAD")
    filler = fill(tmpfs_phase)
    done = subprocess.run([MILESTONE, "close", "--skip-hooks"], cwd=project.root, capture_output=True, text=True)
    assert_one_line_error(done)
    assert path.read_bytes() == before
    assert git(project.root, "rev-parse", "HEAD") == head
    filler.unlink()
    done = subprocess.run([MILESTONE, "close", "--skip-hooks"], cwd=project.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(trailer_commits(project.root)) == 1


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _fail_append_past_a_size_limit(project, monkeypatch) -> tuple[Path, bytes, subprocess.CompletedProcess]:
    monkeypatch.chdir(project.root)
    milestones.start(project, "M44", "file size limit")
    milestones.add_entry(project, "M44", title="e", tools=["x"], purpose="p")
    path = project.root / PHASE / "M44.ledger.jsonl"
    before = path.read_bytes()
    done = subprocess.run([MILESTONE, *entry_args("z" * 5_000)], cwd=project.root, capture_output=True, text=True,
                          preexec_fn=_limit_file_size(len(before) + 1_000))
    return path, before, done


def test_file_size_limit_while_logging(project, monkeypatch) -> None:
    """A full disk simulated without root: RLIMIT_FSIZE makes the growing ledger write fail mid-append."""
    path, before, done = _fail_append_past_a_size_limit(project, monkeypatch)
    assert_one_line_error(done)
    assert ledger.read(path) == ledger.parse(path, before)  # every complete event as it was
    settle_after_failure(project, len(ledger.parse(path, before)), path)
    assert path.read_bytes().startswith(before)


def test_failed_append_leaves_no_partial_bytes(project, monkeypatch) -> None:
    """A multi-event append cut short can leave its first events complete (an import half-adopted)."""
    path, before, done = _fail_append_past_a_size_limit(project, monkeypatch)
    assert done.returncode != 0
    assert path.read_bytes() == before


@pytest.fixture
def read_only(project, monkeypatch):
    """Makes a folder read-only in a way that also binds root: a read-only bind mount (chmod for other users)."""
    mounted: list[Path] = []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            mounted.append(folder)
            return
        if shutil.which("mount") is None:
            pytest.skip("running as root without a mount command: chmod does not bind root")
        for cmd in (["mount", "--bind", str(folder), str(folder)], ["mount", "-o", "remount,ro,bind", str(folder)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                if cmd[1] != "--bind":
                    subprocess.run(["umount", str(folder)], check=False)
                pytest.skip(f"running as root without mount rights: cannot make {folder.name} read-only ({done.stderr.strip()})")
        mounted.append(folder)

    yield make
    for folder in mounted:
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["umount", str(folder)], check=False)


def test_read_only_milestone_folder(project, read_only, monkeypatch) -> None:
    monkeypatch.chdir(project.root)
    milestones.start(project, "M44", "read-only")
    milestones.add_entry(project, "M44", title="e", tools=["x"], purpose="p")
    folder = project.root / PHASE
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    read_only(folder)
    for args in (entry_args(), ["log", "update", "1", "--status", "completed"], ["log", "session"],
                 ["log", "checkpoint", "cp", "--standalone"], ["render"], ["close", "--skip-hooks", "--force"]):
        done = subprocess.run([MILESTONE, *args], cwd=project.root, capture_output=True, text=True)
        assert_one_line_error(done)
        assert done.returncode == 2, (args, done.stderr)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot, args


def test_read_only_per_clone_state_does_not_fail_a_recorded_entry(project, read_only, monkeypatch) -> None:
    """`.git/tunix-rt` (render cache, current milestone) read-only: an entry is either recorded and
    reported, or refused and absent; never recorded while the command says it failed."""
    monkeypatch.chdir(project.root)
    milestones.start(project, "M44", "read-only state")
    milestones.add_entry(project, "M44", title="e", tools=["x"], purpose="p")
    path = project.root / PHASE / "M44.ledger.jsonl"
    before = path.read_bytes()
    read_only(project.git_dir / "tunix-rt")
    done = subprocess.run([MILESTONE, *entry_args()], cwd=project.root, capture_output=True, text=True)
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == 0:
        assert int(done.stdout) == 2 and len(ledger.read(path)) == len(ledger.parse(path, before)) + 1
    else:
        assert path.read_bytes() == before, f"exit {done.returncode} ({done.stderr.strip()}) but the entry was recorded"
