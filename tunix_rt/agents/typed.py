"""The hook events that need the typed stack: a session start (a session heading and a briefing back to
the agent), Stop (re-render a view the fast path left behind) and the repair of a torn ledger line.

Imported only for those events, once per session or turn, never on the per-call path.
"""

from __future__ import annotations

import json
from pathlib import Path

from tunix_rt import ledger, milestones, views
from tunix_rt.agents import briefing
from tunix_rt.agents.payloads import HookEvent
from tunix_rt.project import Project


def repair(path: str) -> None:
    """Opening a typed writer removes a torn last line left by a killed writer."""
    with ledger.writer(Path(path)):
        pass


def refresh_view(root: str, milestone: str) -> str:
    """Brings the view up to date with what the fast path appended: "fresh", "caught-up" or "rendered".

    The usual case between two Stop events is entries added and finished since the last render: their
    blocks are rendered and appended, exactly what `log entry` does for one entry, so the file is the
    same bytes a full render gives. Anything else (an amendment of an older entry, a session, a missing
    or doubtful cache) renders the whole view; neither renders under the ledger lock.
    """
    project = Project.find(Path(root))
    return views.refresh(project, milestone, project.ledger(milestone))


def session_start(root: str, milestone: str | None, event: HookEvent) -> str | None:
    """A new session heading (not after a compaction: the session goes on) and the agent's briefing."""
    project = Project.find(Path(root))
    state = None
    if milestone is not None and project.find_ledger(milestone) is not None:
        state = milestones.load(project, milestone)
        if state.status == "open" and event.source != "compact":
            note = None
            if event.source in ("resume", "clear"):
                note = f"{event.agent} session {event.session_id} ({event.source})"
            milestones.start_session(project, milestone, recovered=note)
            state = milestones.load(project, milestone)
    text = briefing.build(project, state)
    return answer(event, text)


def answer(event: HookEvent, text: str) -> str | None:
    """The briefing in the agent's documented SessionStart output format."""
    if event.agent in ("claude-code", "codex"):
        return json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": text}},
                          ensure_ascii=False)
    if event.agent == "gemini":
        return json.dumps({"hookSpecificOutput": {"additionalContext": text}}, ensure_ascii=False)
    return None  # Cursor documents no context output for its session events
