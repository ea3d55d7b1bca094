"""`milestone agent install|uninstall`: merged into each agent's settings, idempotent, removes only its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunix_rt.agents import install

EXE = "/opt/venv/bin/milestone"

USER_FILES = {
    "claude-code": {"permissions": {"allow": ["Bash(ls)"]},
                    "hooks": {"PreToolUse": [{"matcher": "Bash",
                                              "hooks": [{"type": "command", "command": "./check.sh"}]}],
                              "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}]}},
    "codex": {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "python3 stop.py", "timeout": 30}]}]}},
    "gemini": {"theme": "GitHub", "hooks": {"BeforeTool": [{"matcher": "write_file", "hooks": [
        {"type": "command", "command": "./lint.sh", "name": "lint"}]}]}},
    "cursor": {"version": 1, "hooks": {"afterFileEdit": [{"command": "./format.sh"}]}},
}


@pytest.mark.parametrize("agent", sorted(USER_FILES))
def test_install_keeps_the_users_hooks_and_is_idempotent(repo: Path, agent: str) -> None:
    target = repo / install.TARGETS[agent][0]
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(USER_FILES[agent]), encoding="utf-8")
    first = install.install(repo, agent, executable=EXE)
    assert first.changed
    data = json.loads(target.read_text(encoding="utf-8"))
    text = target.read_text(encoding="utf-8")
    assert text.count(f"{EXE} log hook --agent {agent}") == len(install.TARGETS[agent][1] + install.TARGETS[agent][2])
    for key, value in USER_FILES[agent].items():  # every user setting still there
        if key != "hooks":
            assert data[key] == value
    for event, groups in USER_FILES[agent]["hooks"].items():
        assert all(group in data["hooks"][event] for group in groups)
    assert not install.install(repo, agent, executable=EXE).changed
    assert target.read_text(encoding="utf-8") == text  # a second run changes no byte
    assert install.uninstall(repo, agent).changed
    assert json.loads(target.read_text(encoding="utf-8")) == USER_FILES[agent]


def test_dry_run_writes_nothing_and_shows_the_diff(repo: Path) -> None:
    change = install.install(repo, "claude-code", dry_run=True, executable=EXE)
    assert change.changed and not (repo / ".claude").exists()
    assert "+        \"matcher\": \"*\"," in change.diff(repo)


def test_a_moved_install_replaces_the_old_command(repo: Path) -> None:
    install.install(repo, "codex", executable="/old/bin/milestone")
    install.install(repo, "codex", executable=EXE)
    text = (repo / ".codex/hooks.json").read_text(encoding="utf-8")
    assert "/old/bin" not in text and text.count(EXE) == 5


def test_the_claude_code_file_has_the_documented_shape(repo: Path) -> None:
    install.install(repo, "claude-code", executable=EXE)
    hooks = json.loads((repo / ".claude/settings.json").read_text(encoding="utf-8"))["hooks"]
    handler = {"type": "command", "command": f"{EXE} log hook --agent claude-code"}
    assert hooks["PreToolUse"] == [{"matcher": "*", "hooks": [handler]}]
    assert hooks["SessionStart"] == [{"hooks": [handler]}]


def test_a_broken_settings_file_is_refused_untouched(repo: Path, run_cli) -> None:
    target = repo / ".cursor/hooks.json"
    target.parent.mkdir()
    target.write_text("{not json", encoding="utf-8")
    done = run_cli("agent", "install", "cursor")
    assert done.code == 2 and "not valid JSON" in done.err and done.err.count("\n") == 1
    assert target.read_text(encoding="utf-8") == "{not json"


def test_the_cli_installs_the_running_milestone(repo: Path, run_cli) -> None:
    done = run_cli("agent", "install", "gemini")
    assert done.code == 0, done
    settings = json.loads((repo / ".gemini/settings.json").read_text(encoding="utf-8"))
    command = settings["hooks"]["AfterTool"][0]["hooks"][0]
    assert Path(command["command"].split(" log hook")[0].strip("'")).is_absolute()
    assert run_cli("agent", "install", "gemini").out.endswith("already installed, nothing changed\n")
