"""The `milestone close` command (thin: parse, call `closing.close`, print text or `--json`)."""

from typing import Annotated, Optional

import typer

from tunix_rt.cli_options import JsonOpt, MilestoneOpt, print_json


def close_command(
    milestone: MilestoneOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the draft summary and the files it would commit; write nothing.")
    ] = False,
    no_commit: Annotated[
        bool, typer.Option("--no-commit", help="Run the gates and write draft summary and audit, then stop (the "
                           "milestone stays open; the master doc is shown, not written).")
    ] = False,
    skip_hooks: Annotated[
        bool, typer.Option("--skip-hooks", help="Do not run pre-commit (the summary says so).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Close although entries are open, thresholds unmet or the tests fail, "
                           "or replace documents close did not write (all recorded).")
    ] = False,
    tag: Annotated[bool, typer.Option("--tag", help="Add an annotated tag such as m44 to the closing commit.")] = False,
    summary: Annotated[
        Optional[str], typer.Option("--summary", help="Executive summary: TEXT, or @FILE to read it from a file.")
    ] = None,
    sign: Annotated[
        Optional[bool], typer.Option("--sign/--no-sign", help="Commit a signed in-toto statement of the documents "
                                     "and evidence (git's SSH signing key; default: the close.sign setting).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a milestone: checks, gates, summary + audit + master doc, and one commit with a `Milestone:` trailer."""
    from tunix_rt import closing
    from tunix_rt.project import Project

    result = closing.close(
        Project.find(),
        milestone,
        dry_run=dry_run,
        no_commit=no_commit,
        skip_hooks=skip_hooks,
        force=force,
        tag=tag,
        summary=summary,
        sign=sign,
    )
    if as_json:
        data = result.to_json()
        if dry_run:
            data["summary"] = result.summary
        print_json(data)
        return
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if dry_run:
        typer.echo(result.summary, nl=False)
        typer.echo("\n--- files the commit would carry ---")
        for path in result.files:
            typer.echo(path)
        typer.echo("--- commit message ---")
        typer.echo(result.message, nl=False)
        return
    for path in result.written:
        typer.echo(f"wrote {path}" + (" (draft)" if result.no_commit else ""))
    if result.no_commit:
        typer.echo("--- master-doc block the commit would add ---")
        typer.echo(result.master_block)
        typer.echo(f"{result.milestone} stays open (--no-commit): nothing staged or committed")
        return
    commit = result.commit[:12] if result.commit else "?"
    typer.echo(f"closed {result.milestone}: commit {commit} ({len(result.files)} files)"
               + (f", tag {result.tag}" if result.tag else ""))
    typer.echo(f"  {result.whole.line}")
    for unmet in result.unmet:
        typer.echo(f"  threshold not met (closed with --force): {unmet}")


def register(app: typer.Typer) -> None:
    app.command("close")(close_command)
