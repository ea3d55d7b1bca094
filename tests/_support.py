"""Test helpers shared by test modules (never imported from one test module into another): settings, a
hand-run repository such as the ones the tool is adopted into, and replaying an agent's hook payload stream."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt.agents import hook

DATA = Path(__file__).resolve().parent / "data"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tunix-rt"
MILESTONES = "ProjectFiles/Milestones"


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **(env or {})}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=full).stdout


@dataclass
class HandRun:
    """A repository run by hand for a while: what the tests expect the tool to find in it."""

    root: Path
    closing: dict[str, str] = field(default_factory=dict)  # milestone -> SHA of the commit that closed it
    finalize: dict[str, str] = field(default_factory=dict)  # milestone -> SHA of the later "Finalize" commit

    def tracked_bytes(self) -> dict[str, bytes]:
        """Every tracked file's bytes as they are in the work tree."""
        names = git(self.root, "ls-files", "-z").split("\0")
        return {name: (self.root / name).read_bytes() for name in names if name}


_SUMMARIES = {
    "M01": "# M01 Milestone Completion Summary\n\n**Milestone:** M01  \n**Status:** ✅ Complete\n",
    "M02": "# M02 Milestone Summary: Dataset Pipeline\n\n**Status:** Complete\n",
    "M07": "# M07 Milestone Summary: Survey and Decide\n\n**Milestone:** M07  \n**Status:** ✅ Complete\n",
    "M08": "# M08 Summary — Install and Train on CPU\n\n**Status:** ✅ **COMPLETE**\n",
    "M09": "",  # a placeholder nobody filled: the title comes from the plan
}
_PLANS = {
    "M01": "Below is a Cursor-ready plan.\n\n# Cursor Handoff Prompt — **M01: Baseline Setup**\n\n## Objective\n",
    "M09": "# Cursor Handoff Prompt — **M09: Structured Self-Correction**\n\n## Objective\n",
    "M11": "# Cursor Handoff Prompt — **M11: Observer Model**\n",
}
# Where each milestone's files live, and which hand-written log (tests/data/...) it kept.
LAYOUT = {
    "M01": ("Phase1", None),
    "M02": ("Phase1", None),
    "M07": ("Phase3", "legacy/colon_list_fields.md"),
    "M08": ("Phase3", "legacy/dash_bold_fields.md"),
    "M09": ("Phase4", "legacy/timestamp_headers.md"),
    "M10": ("Phase4", "legacy/h2_entries.md"),
    "M11": ("Phase5", "adoption/M11_toolcalls.md"),
}
# Milestones closed by a pair of commits: `Mnn: Title - outcome` (with the summary) then `Mnn: Finalize toolcalls log`.
CLOSED_BY_COMMIT = {
    "M01": "M01: Baseline Setup - CI green",
    "M02": "M02: Dataset Pipeline - manifests reproducible",
    "M07": "M07: Survey and Decide - decisions locked",
    "M08": "M08: Install and Train - CPU run complete",
    "M10": "M10: Curriculum Run - research complete",
}


def _write(root: Path, rel: str, data: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def hand_run_repo(root: Path) -> HandRun:
    """Builds a repository kept by hand: Phase1/3/4/5 and Temp/ folders, plans, summaries, the logs of
    tests/data/legacy (one layout each), a master doc at the root under the project's own name, a `.gitignore`
    that already has weight rules, a branch `feat/m15-try`, and two closing commits per closed milestone (the
    second, "Finalize toolcalls log", never touches the summary). M09 closed only in its log; M11 is still open."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Hand Runner"), ("user.email", "hand@example.com"), ("commit.gpgsign", "false")):
        git(root, "config", key, value)
    _write(root, "demo-rt.md", (DATA / "adoption" / "master-doc.md").read_bytes())
    _write(root, "README.md", "# Demo RT\n\nSee demo-rt.md.\n")
    _write(root, ".gitignore", "submission_runs/**/checkpoints/\n*.safetensors\n*.bin\n__pycache__/\n")
    for n in (12, 13, 14):  # staging placeholders, 0 bytes, as the first commit created them
        for kind in ("plan", "summary"):
            _write(root, f"{MILESTONES}/Temp/M{n}_{kind}.md", b"")
    git(root, "add", "-A")
    clock = 1_767_000_000  # fixed dates and identity: the same commits, SHAs included, on every build
    stamp = {"GIT_AUTHOR_DATE": f"@{clock} +0000", "GIT_COMMITTER_DATE": f"@{clock} +0000"}
    git(root, "commit", "-q", "-m", "M0: project skeleton", env=stamp)
    result = HandRun(root=root)
    for mid, (phase, log) in LAYOUT.items():
        folder = f"{MILESTONES}/{phase}"
        if mid in _PLANS:
            _write(root, f"{folder}/{mid}_plan.md", _PLANS[mid])
        git(root, "add", "-A")
        clock += 600
        stamp = {"GIT_AUTHOR_DATE": f"@{clock} +0000", "GIT_COMMITTER_DATE": f"@{clock} +0000"}
        git(root, "commit", "-q", "--allow-empty", "-m", f"docs({mid}): add plan", env=stamp)
        if mid in _SUMMARIES:
            _write(root, f"{folder}/{mid}_summary.md", _SUMMARIES[mid])
        if log is not None:
            _write(root, f"{folder}/{mid}_toolcalls.md", (DATA / log).read_bytes())
        git(root, "add", "-A")
        clock += 600
        stamp = {"GIT_AUTHOR_DATE": f"@{clock} +0000", "GIT_COMMITTER_DATE": f"@{clock} +0000"}
        if mid in CLOSED_BY_COMMIT:
            git(root, "commit", "-q", "-m", CLOSED_BY_COMMIT[mid], env=stamp)
            result.closing[mid] = git(root, "rev-parse", "HEAD").strip()
            if log is not None:  # the log patched afterwards, as every hand-run close from M45 on did
                with open(root / folder / f"{mid}_toolcalls.md", "a", encoding="utf-8") as handle:
                    handle.write("\n<!-- commit recorded -->\n")
            git(root, "add", "-A")
            clock += 20
            stamp = {"GIT_AUTHOR_DATE": f"@{clock} +0000", "GIT_COMMITTER_DATE": f"@{clock} +0000"}
            git(root, "commit", "-q", "--allow-empty", "-m", f"{mid}: Finalize toolcalls log", env=stamp)
            result.finalize[mid] = git(root, "rev-parse", "HEAD").strip()
        else:
            git(root, "commit", "-q", "-m", f"wip: {mid} work in progress", env=stamp)
    git(root, "branch", "feat/m15-try")
    return result


def render_items(items: list, mid: str = "M44", title: str = "") -> str:
    """The tool-calls view a ledger holding exactly these timeline items renders to."""
    from tunix_rt import render
    from tunix_rt.models import Baseline, Block, Checkpoint, Entry, Environment, Milestone, Session, TimelineItem

    kinds = {
        Session: ("session", "sessions"),
        Entry: ("entry", "entries"),
        Checkpoint: ("checkpoint", "checkpoints"),
        Block: ("block", "blocks"),
    }
    collections: dict[str, list] = {"sessions": [], "entries": [], "checkpoints": [], "blocks": []}
    timeline = []
    for item in items:
        kind, name = kinds[type(item)]
        timeline.append(TimelineItem(type=kind, index=len(collections[name])))
        collections[name].append(item)
    state = Milestone(
        id=mid,
        title=title,
        phase=4,
        status="open",
        started="2026-01-08T00:00:00Z",
        timeline=timeline,
        baseline=Baseline(
            sha=None, branch=None, time="2026-01-08T00:00:00Z", environment=Environment(python="3.11", platform="linux")
        ),
        **collections,
    )
    return render.render_toolcalls(render.environment(None), state)


def add_setting(root: Path, line: str) -> None:
    """Appends a top-level `[tool.tunix-rt]` setting to the project's milestone.toml (what `init` writes
    where there is no pyproject.toml)."""
    toml = root / "milestone.toml"
    name = line.split("=", 1)[0].strip()
    kept = [old for old in toml.read_text(encoding="utf-8").splitlines() if old.split("=", 1)[0].strip() != name]
    toml.write_text("\n".join([*kept, line]) + "\n", encoding="utf-8")


# --- agent hooks ----------------------------------------------------------------------------

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
