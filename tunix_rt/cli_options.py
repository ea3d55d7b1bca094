"""Options and output helpers shared by every `milestone` command module (one definition each)."""

import json
from typing import Annotated, Optional

import typer

from tunix_rt.errors import TunixError

MilestoneOpt = Annotated[
    Optional[str], typer.Option("--milestone", "-m", help="Milestone id such as M44 (default: the current one).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 session`, `2 sessions`, `0 entries` (pass `nouns` where adding an s is wrong)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def require_subcommand(ctx: typer.Context) -> None:
    """A group called without its command: one usage line on stderr and exit 2, not a help box that looks
    like success. Groups set `invoke_without_command=True` so this callback sees the bare call."""
    if ctx.invoked_subcommand is not None or ctx.resilient_parsing:
        return
    group = ctx.command
    names = [name for name, command in getattr(group, "commands", {}).items() if not command.hidden]
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
    raise TunixError(f"missing command; usage: {ctx.command_path} COMMAND [ARGS]... where COMMAND is {listed} "
                     f"(see `{ctx.command_path} --help`)")
