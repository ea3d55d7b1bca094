"""Helpers shared by test modules: replaying an agent's recorded hook payload stream."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from tunix_rt.agents import hook

AGENT_DATA = Path(__file__).resolve().parent / "data" / "agents"
# A fake Hugging Face token, built here so that no secret-shaped string is committed.
PLANTED_TOKEN = "hf_" + "Zq7" * 10


@dataclass
class HookRun:
    code: int
    out: str
    err: str


def run_hook(payload: dict | str, *argv: str) -> HookRun:
    """One `milestone log hook` event, in-process through the same entry point the console script uses."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    out, err = io.StringIO(), io.StringIO()
    import contextlib

    with contextlib.redirect_stderr(err):
        code = hook.main(list(argv), stdin=io.StringIO(data), stdout=out)
    return HookRun(code, out.getvalue(), err.getvalue())


def stream(agent: str, root: Path) -> list[dict]:
    """The agent's payload stream from tests/data/agents, placed in repository `root`."""
    text = (AGENT_DATA / f"{agent}.jsonl").read_text(encoding="utf-8")
    text = text.replace("{ROOT}", root.as_posix()).replace("{TOKEN}", PLANTED_TOKEN)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def replay(agent: str, root: Path, *argv: str) -> list[HookRun]:
    return [run_hook(payload, *argv) for payload in stream(agent, root)]
