"""`milestone agent install|uninstall|audit`: wiring an AI coding agent's hooks, and checking what they caught."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunix_rt.cli_options import JsonOpt, MilestoneOpt, print_json, require_subcommand
from tunix_rt.project import Project

agent_app = typer.Typer(help="Wire an AI coding agent's hooks into this project; audit what they recorded.",
                        invoke_without_command=True, callback=require_subcommand)

AgentArg = Annotated[str, typer.Argument(help="claude-code, codex, gemini or cursor.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the change as a diff; write nothing.")]


def _report(change, root: Path, dry_run: bool, verb: str, as_json: bool) -> None:
    name = change.path.relative_to(root).as_posix()
    if as_json:
        print_json({"file": name, "action": verb, "changed": change.changed, "dry_run": dry_run,
                    "diff": change.diff(root) if change.changed else ""})
    elif not change.changed:
        typer.echo(f"{name}: already {verb}, nothing changed")
    elif dry_run:
        typer.echo(change.diff(root), nl=False)
    else:
        typer.echo(f"{verb} tunix-rt hooks in {name}")


@agent_app.command("install")
def install(agent: AgentArg, dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """Merge the hook configuration into the agent's project settings, keeping every existing setting and hook."""
    from tunix_rt.agents import install as installing

    root = Project.find().root
    _report(installing.install(root, agent, dry_run=dry_run), root, dry_run, "installed", as_json)


@agent_app.command("uninstall")
def uninstall(agent: AgentArg, dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """Remove this tool's hook handlers (and nothing else) from the agent's project settings."""
    from tunix_rt.agents import install as installing

    root = Project.find().root
    _report(installing.uninstall(root, agent, dry_run=dry_run), root, dry_run, "uninstalled", as_json)


@agent_app.command("audit")
def audit(
    transcript: Annotated[Path, typer.Option("--transcript", help="A Claude Code transcript (JSONL).")],
    fill: Annotated[bool, typer.Option("--fill", help="Record the calls no hook caught.")] = False,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile a transcript's tool calls with the ledger by tool-use id: coverage and the ids missed."""
    from tunix_rt.agents import audit as auditing

    result = auditing.audit(Project.find(), milestone, transcript, fill=fill)
    if as_json:
        print_json({"transcript": result.transcript, "milestone": result.milestone, "calls": result.calls,
                    "recorded": len(result.recorded), "coverage": round(result.coverage, 4),
                    "missing": result.missing, "skipped_milestone_calls": result.skipped, "filled": result.filled})
        return
    expected = result.calls - len(result.skipped)
    typer.echo(f"{result.milestone}: {len(result.recorded)} of {expected} tool calls recorded "
               f"({result.coverage:.1%}); {len(result.skipped)} milestone commands not recorded by design")
    for call_id in result.missing:
        typer.echo(f"  {'filled' if call_id in result.filled else 'missing'}: {call_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")


__all__: list[str] = ["agent_app", "register"]
