"""Options and output helpers shared by every `milestone` command module (one definition each)."""

import json
from typing import Annotated, Optional

import typer

MilestoneOpt = Annotated[
    Optional[str], typer.Option("--milestone", "-m", help="Milestone id such as M44 (default: the current one).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
