"""No render runs under the ledger lock (issue 13): a user template may take up to `render_timeout_s`, and every
agent hook and `log` command would wait on it. Each render is observed as it starts: a second, non-blocking
exclusive lock on the ledger must be obtainable then (flock conflicts between two opens in one process too)."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from tunix_rt import ledger, milestones, render, views
from tunix_rt.agents import typed
from tunix_rt.errors import TunixError
from tunix_rt.models import Run
from tunix_rt.project import Project

PHASE = "ProjectFiles/Milestones/Phase1"


class LockProbe:
    """Wraps the two render entry points; records every render that found the ledger locked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ledger_path: Path) -> None:
        self.path = ledger_path
        self.renders = 0
        self.under_lock: list[str] = []
        self.during_render = None  # called once, from inside the first render (a racing writer)
        for name in ("render_block", "render_toolcalls_parts"):
            monkeypatch.setattr(render, name, self._wrap(name, getattr(render, name)))

    def _wrap(self, name, real):
        def probed(*args, **kwargs):
            self.renders += 1
            with open(self.path, "rb") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    self.under_lock.append(name)
                    return real(*args, **kwargs)  # (a racing writer would wait for the lock forever)
            if self.during_render is not None:
                act, self.during_render = self.during_render, None
                act()
            return real(*args, **kwargs)

        return probed


def _assert_view_is_a_full_render(project: Project, mid: str = "M44") -> None:
    view = project.root / PHASE / f"{mid}_toolcalls.md"
    assert view.read_text(encoding="utf-8") == views.full_text(project, ledger.load(project.ledger(mid))).text


def _run(step: int) -> Run:
    return Run(id=f"m44_v{step}", kind="train", plugin="p", path="x", status="completed",
               started="2026-01-08T12:00:00Z")


WRITES = {
    "log entry": lambda p: milestones.add_entry(p, "M44", title="t", tools=["x"], purpose="p"),
    "log update (last)": lambda p: milestones.update_entry(p, "M44", None, status="completed"),
    "log update (older)": lambda p: milestones.update_entry(p, "M44", 1, sections=[("Notes", "older")]),
    "log checkpoint": lambda p: milestones.add_checkpoint(p, "M44", "saved"),
    "log checkpoint --standalone": lambda p: milestones.add_checkpoint(p, "M44", "Phase B", standalone=True),
    "log session": lambda p: milestones.start_session(p, "M44"),
    "accept": lambda p: milestones.accept(p, "train.final_loss < 9", milestone="M44"),
    "run recorded": lambda p: milestones.record_run(p, "M44", _run(1)),
    "render": lambda p: milestones.render_views(p, "M44"),
    "agent Stop": lambda p: typed.refresh_view(str(p.root), "M44"),
}


@pytest.fixture
def m44(project: Project) -> Project:
    milestones.start(project, "M44", "Locks")
    milestones.add_entry(project, "M44", title="first", tools=["x"], purpose="p")
    milestones.add_entry(project, "M44", title="second", tools=["x"], purpose="p")
    return project


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_no_render_runs_under_the_ledger_lock(m44: Project, monkeypatch, write: str) -> None:
    if write in ("render", "agent Stop", "accept", "run recorded"):  # these render only a stale view: make it so
        (m44.git_dir / "tunix-rt" / "render" / "M44.json").unlink()
    probe = LockProbe(monkeypatch, m44.ledger("M44"))
    WRITES[write](m44)
    assert probe.renders, "the write rendered nothing: the probe saw nothing"
    assert probe.under_lock == []
    _assert_view_is_a_full_render(m44)


@pytest.mark.parametrize("write", ["log entry", "log update (last)", "log update (older)",
                                   "log checkpoint --standalone", "log session"])
def test_a_writer_appending_while_a_block_renders_is_neither_lost_nor_renumbered(m44: Project, monkeypatch,
                                                                                 write: str) -> None:
    # Another writer (an agent's hook, a second terminal) appends an entry between the first look at the
    # ledger and the append: the event is built again from what is there, and the view catches up.
    probe = LockProbe(monkeypatch, m44.ledger("M44"))
    probe.during_render = lambda: milestones.add_entry(m44, "M44", title="racing", tools=["x"], purpose="p")
    WRITES[write](m44)
    assert probe.under_lock == []
    state = ledger.load(m44.ledger("M44"))
    numbers = [e.number for e in state.entries]
    assert numbers == list(range(1, len(numbers) + 1)) and "racing" in [e.title for e in state.entries]
    _assert_view_is_a_full_render(m44)


def test_a_broken_template_still_writes_nothing(m44: Project) -> None:
    templates = m44.root / m44.settings.templates_dir
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "toolcalls_entry.md.j2").write_text("{{ entry.nope.deeper() }}\n", encoding="utf-8")
    before = m44.ledger("M44").read_bytes()
    with pytest.raises(TunixError):
        milestones.add_entry(Project.find(m44.root), "M44", title="t", tools=["x"], purpose="p")
    assert m44.ledger("M44").read_bytes() == before


# --- the view cache is bound to the templates it was made with ------------------------------------

ENTRY_TEMPLATE = "\n### Entry {{ entry.label }} :: {{ entry.title }}\n\n---\n"


def _override_entry_template(project: Project) -> Project:
    templates = project.root / project.settings.templates_dir
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "toolcalls_entry.md.j2").write_text(ENTRY_TEMPLATE, encoding="utf-8")
    return Project.find(project.root)


def test_a_template_edited_between_writes_makes_the_next_write_render_in_full(m44: Project) -> None:
    project = _override_entry_template(m44)
    milestones.add_entry(project, "M44", title="third", tools=["x"], purpose="p")
    text = (project.root / PHASE / "M44_toolcalls.md").read_text(encoding="utf-8")
    assert "### Entry 1 :: first" in text and "### Entry 3 :: third" in text
    _assert_view_is_a_full_render(project)


def test_close_splices_a_current_view_and_renders_one_made_with_other_templates(m44: Project) -> None:
    path = m44.ledger("M44")
    before = ledger.load(path)
    after = before.model_copy(deep=True)
    after.status, after.title = "closed", "Locks, closed"  # the header changes; no block does
    spliced = views.with_header(m44, path, path.stat().st_size, before, after)
    assert spliced is not None and spliced == views.full_text(m44, after)
    assert views.with_header(m44, path, path.stat().st_size - 1, before, after) is None  # another ledger
    project = _override_entry_template(m44)
    assert views.with_header(project, path, path.stat().st_size, before, after) is None


def test_the_closing_commit_holds_the_view_of_the_templates_in_use(m44: Project) -> None:
    import subprocess

    from tunix_rt import closing

    project = _override_entry_template(m44)
    result = closing.close(project, "M44", skip_hooks=True, force=True)
    shown = subprocess.run(["git", "show", f"{result.commit}:{PHASE}/M44_toolcalls.md"], cwd=project.root,
                           capture_output=True, text=True, check=True).stdout
    assert "### Entry 2 :: second" in shown
    assert shown == views.full_text(project, ledger.load(project.ledger("M44"))).text
