"""The briefing a session start hands back to the agent: where the milestone stands, in a few lines.

Claude Code keeps at most 10,000 characters of a hook's additionalContext and silently drops the rest,
so the briefing is cut before that with an explicit marker and a pointer to the full material.
"""

from __future__ import annotations

import re
from typing import Any

from tunix_rt.models import OPEN_STATUSES, Milestone
from tunix_rt.project import Project

LIMIT = 10_000
OPEN_SHOWN = 20


def objective(project: Project, milestone: str) -> str:
    """The plan's `## Objective` paragraph, without the template's guidance comment."""
    try:
        text = project.doc_path(milestone, "plan").read_text(encoding="utf-8")
    except OSError:
        return ""
    match = re.search(r"^## Objective[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    body = re.sub(r"<!--.*?-->", "", match.group(1), flags=re.S).strip() if match else ""
    return body


def _headline(metrics: dict[str, Any], limit: int = 8) -> str:
    """The run's top-level numbers (and one level down: eval.primary_score), first `limit` of them."""
    numbers: list[str] = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            numbers += [f"{key}.{k}={v:g}" for k, v in value.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers.append(f"{key}={value:g}")
    return ", ".join(numbers[:limit])


def lines(project: Project, state: Milestone) -> list[str]:
    out = [f"tunix-rt milestone {state.id} — {state.title} [{state.status}], phase {state.phase}, "
           f"{len(state.entries)} entries, {len(state.runs)} runs."]
    goal = objective(project, state.id)
    if goal:
        out.append(f"Objective: {goal}")
    thresholds = getattr(state, "acceptance", None) or getattr(state, "thresholds", None)
    if thresholds:
        out.append("Acceptance thresholds: " + "; ".join(str(getattr(t, "expression", t)) for t in thresholds))
    last_point = next((e.checkpoint for e in reversed(state.entries) if e.checkpoint), None)
    if state.checkpoints and (last_point is None or (state.timeline and state.timeline[-1].type == "checkpoint")):
        last_point = state.checkpoints[-1].title
    if last_point:
        out.append(f"Last checkpoint: {last_point}")
    open_entries = [e for e in state.entries if e.status in OPEN_STATUSES]
    if open_entries:
        out.append(f"Open entries ({len(open_entries)}):")
        out += [f"- {e.label}: {e.title}" for e in open_entries[-OPEN_SHOWN:]]
        if len(open_entries) > OPEN_SHOWN:
            out.append(f"- … {len(open_entries) - OPEN_SHOWN} older open entries: `milestone status`")
    if state.runs:
        run = state.runs[-1]
        headline = _headline(run.metrics)
        out.append(f"Last run: {run.id} ({run.kind}, {run.status}) {run.path}" + (f": {headline}" if headline else ""))
    out.append("Record steps with `milestone log entry`; tool calls are recorded by the hooks; "
               "`milestone log checkpoint TEXT` marks progress.")
    return out


def cut(text: str, pointer: str, limit: int = LIMIT) -> str:
    """`text` if it fits, else its head and an explicit marker naming where the rest is."""
    if len(text) <= limit:
        return text
    marker = f"\n[… briefing cut at {limit:,} characters; the rest: {pointer}]"
    return text[: limit - len(marker)].rstrip() + marker


def build(project: Project, state: Milestone | None) -> str:
    if state is None:
        return ("tunix-rt: no current milestone in this repository. Start one with "
                "`milestone start M01 --title ...` so that tool calls are recorded.")
    if state.status == "closed":
        return (f"tunix-rt: milestone {state.id} ({state.title}) is closed; tool calls are not recorded "
                "until a new milestone is started with `milestone start`.")
    view = project.relative(project.doc_path(state.id, "toolcalls"))
    return cut("\n".join(lines(project, state)), f"`milestone show {state.id}` and {view}")
