"""The command line as a whole: --version, shell completion, --json on every reporting command, bare groups,
`status` across milestones, and the words a new user reads (plurals, a failed entry that says so)."""

from __future__ import annotations

import json
import os
import subprocess

import typer.main

from conftest import MILESTONE
from tunix_rt import __version__, cli
from tunix_rt.models import Checkpoint, Entry, shown_status

# `log hook` answers the agent in the agent's own protocol on stdout; --json would be a second protocol.
NO_JSON = {"milestone log hook"}


def _leaf_commands() -> dict[str, object]:
    """Every runnable command by its full path, from the same click tree the console script runs."""
    root = typer.main.get_command(cli.app)
    found: dict[str, object] = {}

    def walk(command, path: str) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, f"{path} {name}")
        else:
            found[path] = command

    walk(root, "milestone")
    return found


def test_every_reporting_command_takes_json() -> None:
    commands = _leaf_commands()
    assert {"milestone init", "milestone render", "milestone log checkpoint", "milestone log session",
            "milestone abort", "milestone agent install"} <= set(commands)
    missing = [path for path, command in commands.items()
               if path not in NO_JSON and "--json" not in {opt for p in command.params for opt in p.opts}]
    assert missing == []


def test_version_prints_the_package_version() -> None:
    done = subprocess.run([*MILESTONE, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"milestone (tunix-rt) {__version__}"


def test_shell_completion_completes_commands_and_options() -> None:
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_MILESTONE_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - 1)}
        done = subprocess.run(MILESTONE, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("milestone lo") == ["log"]
    assert complete("milestone log ch") == ["checkpoint"]
    assert "--milestone" in complete("milestone status --mil")
    shown = subprocess.run([*MILESTONE, "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert "_MILESTONE_COMPLETE" in shown.stdout


def test_a_bare_group_is_a_usage_error_on_one_line(run_cli) -> None:
    for group, commands in (("log", "entry, update, checkpoint, session or hook"), ("agent", "install")):
        result = run_cli(group)
        assert result.code == 2
        assert result.out == ""
        (line,) = result.err.splitlines()
        assert line.startswith(f"error: missing command; usage: milestone {group} COMMAND [ARGS]...")
        assert commands in line


def test_json_of_the_commands_that_lacked_it(project, run_cli) -> None:
    assert run_cli("start", "M01", "--title", "First").code == 0
    run_cli("log", "entry", "-t", "Read", "--tool", "read", "-p", "look")
    point = json.loads(run_cli("log", "checkpoint", "halfway", "--json").out)
    assert point["checkpoint"] == "halfway" and point["number"] == 1 and point["standalone"] is False
    section = json.loads(run_cli("log", "checkpoint", "Phase A", "--standalone", "--json").out)
    assert section["title"] == "Phase A" and section["standalone"] is True
    session = json.loads(run_cli("log", "session", "--json").out)
    assert session["number"] == 2
    rendered = json.loads(run_cli("render", "--json").out)
    assert rendered == {"rendered": ["ProjectFiles/Milestones/Phase1/M01_toolcalls.md"]}
    init = json.loads(run_cli("init", "--json").out)
    assert "milestone.toml" in init["unchanged"] and init["written"] == []


def test_status_names_the_other_open_milestones_and_takes_one(project, run_cli) -> None:
    for mid, title in (("M01", "One"), ("M02", "Two"), ("M03", "Three")):
        assert run_cli("start", mid, "--title", title).code == 0
    run_cli("log", "entry", "-t", "Only step", "--tool", "bash", "-p", "do it", "-m", "M02")
    current = run_cli("status")
    assert current.out.splitlines()[0].startswith("M03 — Three [open]")
    assert "other open milestones (2; `milestone status --milestone ID`):" in current.out
    assert "  M01 — One" in current.out and "  M02 — Two" in current.out
    chosen = run_cli("status", "--milestone", "M02")
    assert chosen.out.splitlines()[0].startswith("M02 — Two [open]")
    assert "1 entry, 0 runs, 1 session" in chosen.out
    assert "  M03 — Three" in chosen.out and "  M02 — Two" not in chosen.out
    data = json.loads(run_cli("status", "--milestone", "M02", "--json").out)
    assert data["current"] == "M02" and data["sessions"] == 1
    assert [o["id"] for o in data["other_open"]] == ["M01", "M03"]
    assert run_cli("status", "--milestone", "M09").code == 2


def test_a_failed_entry_reads_failed_whatever_its_text(project, run_cli) -> None:
    run_cli("start", "M01", "--title", "First")
    run_cli("log", "entry", "-t", "Train", "--tool", "bash", "-p", "train", "--status", "failed")
    run_cli("log", "entry", "-t", "Eval", "--tool", "bash", "-p", "eval")
    run_cli("log", "update", "2", "--status", "failed", "--status-text", "timed out after 30 min")
    view = (project.root / "ProjectFiles/Milestones/Phase1/M01_toolcalls.md").read_text(encoding="utf-8")
    assert "**Status:** ❌ FAILED\n" in view
    assert "**Status:** ❌ FAILED — timed out after 30 min\n" in view
    assert "❌ FAILED" in run_cli("show").out


def test_shown_status_rules() -> None:
    assert shown_status("failed", "") == "❌ FAILED"
    assert shown_status("failed", "FAILED — no wheel") == "❌ FAILED — no wheel"
    assert shown_status("failed", "oom") == "❌ FAILED — oom"
    assert shown_status("failed", "❌ FAILED (x)") == "❌ FAILED (x)"
    assert shown_status("completed", "done, finally") == "done, finally"
    # Imported history keeps the words its author wrote (the importer read them as failed).
    imported = Entry(number=1, label="1", status="failed", status_text="Fail: OOM", source="import")
    assert imported.shown_status() == "Fail: OOM"
    assert Checkpoint(title="X", status="failed").shown_status() == "❌ FAILED"
