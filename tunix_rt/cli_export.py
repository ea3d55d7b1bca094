"""The `milestone export` commands (thin: parse, call, print); exporters import their client only when run."""

from dataclasses import asdict
from typing import Annotated, Optional

import typer

from tunix_rt.cli_options import JsonOpt, MilestoneOpt, print_json, require_subcommand

export_app = typer.Typer(help="Send evidence runs to an experiment tracker.", invoke_without_command=True,
                         callback=require_subcommand)


@export_app.command("mlflow")
def export_mlflow_command(
    milestone: MilestoneOpt = None,
    all_milestones: Annotated[bool, typer.Option("--all", help="Every milestone's runs.")] = False,
    tracking_uri: Annotated[
        Optional[str], typer.Option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI).")
    ] = None,
    experiment: Annotated[
        Optional[str], typer.Option("--experiment", help="MLflow experiment (default: the project folder's name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export each evidence run as one MLflow run (config params, per-step metrics, files, tags); exporting
    again updates the same runs and adds only what they lack."""
    from tunix_rt import export_mlflow
    from tunix_rt.project import Project

    result = export_mlflow.export(Project.find(), milestone=milestone, all_milestones=all_milestones,
                                  tracking_uri=tracking_uri, experiment=experiment)
    if as_json:
        print_json([asdict(run) for run in result.runs])
        return
    if not result.runs:
        typer.echo(f"no runs to export (experiment {result.experiment} at {result.tracking_uri})")
    for run in result.runs:
        typer.echo(run.line())


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
