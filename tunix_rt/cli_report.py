"""The `milestone report` command (thin: parse, call `report.build`, print the index path or `--json`)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from tunix_rt.cli_options import JsonOpt, print_json


def report_command(
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Folder to write the site into (default: .tunix-report/ in the "
                                     "repository, which ignores itself); a previous report there is replaced.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a static HTML report of every milestone (index.html and one page each) to open in a browser."""
    from tunix_rt import report
    from tunix_rt.project import Project

    written = report.build(Project.find(), out)
    if as_json:
        print_json(written.to_json())
        return
    typer.echo(str(written.index))


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
