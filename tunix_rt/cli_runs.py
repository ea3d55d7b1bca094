"""The `milestone run train|eval`, `milestone plugins` and `milestone verify` commands (thin: parse, call, print)."""


from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from tunix_rt.cli_options import JsonOpt, MilestoneOpt, print_json, require_subcommand
from tunix_rt.errors import WorkFailed

run_app = typer.Typer(help="Run a plugin's training or evaluation into a new evidence folder.",
                      invoke_without_command=True, callback=require_subcommand)

PluginOpt = Annotated[str, typer.Option("--plugin", "-p", help="Plugin name (see `milestone plugins`).")]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The run's YAML config file.")]
RunOpt = Annotated[
    Optional[str], typer.Option("--run", help="Evidence folder name such as m44_v2 (default: the next free version).")
]



def _command(ctx: typer.Context) -> str:
    """The exact command line; rebuilt from the parsed options when not called as the console script (tests)."""
    import sys

    from tunix_rt import runs

    name = Path(sys.argv[0]).name if sys.argv else ""
    if name in ("milestone", "milestone.exe", "cli.py", "__main__.py") and {"run", "eval"} & set(sys.argv[1:3]):
        return runs.command_line(["milestone", *sys.argv[1:]])
    args = ["milestone", *ctx.command_path.split()[1:]]
    for key, value in ctx.params.items():
        if value not in (None, False):
            flag = "--" + ("json" if key == "as_json" else key.replace("_", "-"))
            args += [flag] if value is True else [flag, str(value)]
    return runs.command_line(args)


def _run(ctx: typer.Context, kind: str, plugin: str, config: Path | None, run: str | None, milestone: str | None,
         as_json: bool, raw: dict | None = None) -> None:
    from tunix_rt import runs
    from tunix_rt.project import Project

    project = Project.find()
    outcome = runs.run(project, milestone, kind, plugin, config, run, command=_command(ctx), raw=raw)  # type: ignore[arg-type]
    if runs.rank_and_world()[0] != 0:
        return  # only rank 0 reports
    if as_json:
        print_json(outcome.run.model_dump(mode="json"))
        return
    typer.echo(f"run {outcome.run.id} {outcome.run.status}: {outcome.run.path}/")
    for line in outcome.results:
        typer.echo(f"  {line}")


@run_app.command("train")
def run_train(
    ctx: typer.Context,
    config: ConfigOpt,
    plugin: PluginOpt = "torch-sft",
    run: RunOpt = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train with a plugin; the run writes its own evidence folder and ledger entry."""
    _run(ctx, "train", plugin, config, run, milestone, as_json)


@run_app.command("eval")
def run_eval(
    ctx: typer.Context,
    config: ConfigOpt,
    plugin: PluginOpt = "torch-sft",
    run: RunOpt = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Scored evaluation of a trained model (generation, answer extraction, exact/normalised/contains)."""
    _run(ctx, "eval", plugin, config, run, milestone, as_json)


eval_app = typer.Typer(help="Evaluation that needs no plugin config: score what exists.",
                       invoke_without_command=True, callback=require_subcommand)


@eval_app.command("score")
def eval_score(
    ctx: typer.Context,
    predictions: Annotated[
        Path, typer.Argument(help="JSONL predictions (generated/final_answer/prediction per line).")
    ],
    eval_set: Annotated[Path, typer.Option("--eval-set", help="JSONL eval set with expected answers.")],
    model: Annotated[
        Optional[str], typer.Option("--model", help="The model that made them (default: meta.model).")
    ] = None,
    run: RunOpt = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a predictions file that was never scored into a new evidence folder (same metrics as a plugin eval)."""
    raw = {"predictions": str(predictions.resolve()), "eval_set": str(eval_set.resolve()), "model": model}
    _run(ctx, "eval", "score", None, run, milestone, as_json, raw=raw)


def plugins_command(as_json: JsonOpt = False) -> None:
    """List installed plugins (entry-point group tunix_rt.plugins) with version and capabilities."""
    from tunix_rt import plugins

    infos = plugins.installed()
    if as_json:
        print_json([asdict(info) for info in infos])
        return
    if not infos:
        typer.echo("no plugins installed")
    for info in infos:
        if info.error:
            typer.echo(f"{info.name}  BROKEN: {info.error}")
        else:
            typer.echo(
                f"{info.name} {info.version}  [{', '.join(info.capabilities)}]"
                f"  ({info.distribution}: {info.entry_point})"
            )


def verify_command(
    run: Annotated[str, typer.Argument(help="A milestone (M44), a run id (m44_v1) or the path of a run folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Verify a milestone from a clone (chain, head, evidence, documents) or re-hash one run's files: exit 0
    when all hold, 1 naming each file that does not."""
    from tunix_rt import evidence
    from tunix_rt.ids import is_milestone_id
    from tunix_rt.project import Project

    if is_milestone_id(run):
        _verify_milestone(Project.find(), run, as_json)
        return
    report = evidence.verify(Project.find(), run)
    if as_json:
        print_json({**asdict(report), "ok": report.ok})
    else:
        for line in report.problems:
            typer.echo(line)
        for path in report.absent_ignored:
            typer.echo(f"absent (ignored by git, not checked): {path}")
        for path in report.unlisted:
            typer.echo(f"not in artifacts.json: {path}")
        if report.ok:
            typer.echo(f"{report.path}: {report.checked} files match")
    if not report.ok:
        bad = report.changed + report.missing + ([evidence.MANIFEST] if report.manifest_error else [])
        raise WorkFailed(f"{report.path}: {len(bad)} file(s) changed or missing: {', '.join(bad)}")


def _verify_milestone(project, milestone: str, as_json: bool) -> None:
    from tunix_rt.ids import canonical_milestone
    from tunix_rt.verify import verify_milestone

    report = verify_milestone(project, canonical_milestone(milestone))
    if as_json:
        print_json(report.to_json())
    else:
        for check in report.checks:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.subject}: {check.detail}")
    if not report.ok:
        raise WorkFailed(f"{report.milestone}: {len(report.failed)} check(s) failed: "
                         + ", ".join(check.subject for check in report.failed))


def register(app: typer.Typer) -> None:
    app.add_typer(run_app, name="run")
    app.add_typer(eval_app, name="eval")
    app.command("plugins")(plugins_command)
    app.command("verify")(verify_command)
