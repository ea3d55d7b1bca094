"""The `milestone` command line: parse, call one core function, print text or `--json`.

No domain logic lives here. Errors raised anywhere as `TunixError` become one line on stderr and
the error's exit code in `run()`, the single translation point.
"""


import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from tunix_rt import milestones
from tunix_rt.cli_options import JsonOpt, MilestoneOpt, plural, print_json, require_subcommand
from tunix_rt.errors import TunixError
from tunix_rt.models import STATUS_DISPLAY, Milestone
from tunix_rt.project import Project



app = typer.Typer(
    name="milestone",
    help="Run an ML project as numbered milestones with an evidence trail that writes itself.",
    invoke_without_command=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell); `import typer`
    # loads the machinery either way
    pretty_exceptions_show_locals=False,  # locals can hold tokens
)
log_app = typer.Typer(help="Append to the current milestone's tool-calls ledger.", invoke_without_command=True,
                      callback=require_subcommand)
app.add_typer(log_app, name="log")

SectionOpt = Annotated[
    Optional[list[str]],
    typer.Option("--section", help="NAME=TEXT: adds TEXT as one item of section NAME (repeatable)."),
]


def _project() -> Project:
    return Project.find()


def _print_version(value: bool) -> None:
    if value:
        from tunix_rt import __version__

        typer.echo(f"milestone (tunix-rt) {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    require_subcommand(ctx)



# --- project ---------------------------------------------------------------------------------


@app.command()
def init(as_json: JsonOpt = False) -> None:
    """Write the tool.tunix-rt settings, create the folders, add ignore rules for weights and the master doc."""
    from dataclasses import asdict

    from tunix_rt import scaffold

    result = scaffold.init(_project())
    if as_json:
        print_json(asdict(result))
        return
    if result.found is not None and result.found.anything():
        typer.echo(f"found {result.found.line()}")
    for path in result.written:
        typer.echo(f"wrote {path}")
    for path in result.unchanged:
        typer.echo(f"kept {path}")


@app.command()
def start(
    milestone: Annotated[str, typer.Argument(help="New milestone id, such as M44.")],
    title: Annotated[str, typer.Option("--title", "-t", help="What the milestone is about.")],
    phase: Annotated[
        Optional[int], typer.Option(help="Phase folder number (default: the latest milestone's, else 1).")
    ] = None,
    branch: Annotated[bool, typer.Option("--branch", help="Create and check out milestone/<id>-<slug>.")] = False,
    accept: Annotated[
        Optional[list[str]],
        typer.Option("--accept", help="Acceptance threshold close will hold the runs to, "
                     "e.g. 'eval.primary_score>=0.4' (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a milestone: record the baseline, scaffold its documents, make it current."""
    project = _project()
    state = milestones.start(project, milestone, title, phase=phase, branch=branch, accept=accept or [])
    if as_json:
        print_json(state.model_dump(mode="json"))
        return
    folder = project.relative(project.ledger(state.id).parent)
    sha = state.baseline.sha[:7] if state.baseline.sha else "none (empty repository)"
    typer.echo(f"started {state.id} — {state.title} (phase {state.phase}, baseline {sha})")
    dirty = state.baseline.dirty_files
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        patch = f"{state.baseline.diff_patch} holds their tracked changes" if state.baseline.diff_patch \
            else "no tracked changes to patch"
        typer.echo(f"dirty at start: {len(dirty)} file(s) ({shown}); {patch}; close leaves them out unless they "
                   "change during the milestone")
    for held in state.thresholds:
        typer.echo(f"accepts {held.threshold.expression}")
    typer.echo(f"documents in {folder}/")


@app.command()
def accept(
    expression: Annotated[
        str, typer.Argument(help="KEY OP NUMBER, e.g. 'train.final_loss<=0.5' or 'eval.primary_score>=0.4'.")
    ],
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an acceptance threshold; close refuses while one is unmet. Set after a run, it shows as a change."""
    held = milestones.accept(_project(), expression, milestone=milestone)
    if as_json:
        print_json(held.model_dump(mode="json"))
        return
    typer.echo(f"accepted {held.threshold.expression}")
    if held.replaced is not None:
        typer.echo(f"  replaces {held.replaced.expression}")
    if held.runs_before:
        typer.echo(f"  set after run(s) {', '.join(held.runs_before)}: the summary shows it as a later change")


@app.command()
def abort(
    milestone: MilestoneOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove a started milestone that has no runs and no commits, saying what it removes."""
    project = _project()
    plan = milestones.abort(project, milestone, dry_run=dry_run)
    if as_json:
        restore = [project.relative(path) for path in plan.restore] if plan.restore is not None else None
        removed = [project.relative(path) for path in plan.remove]
        print_json({"milestone": plan.milestone, "dry_run": dry_run, "remove": removed, "restore": restore,
                    "keep": plan.keep})
        return
    verb = "would remove" if dry_run else "removed"
    for path in plan.remove:
        typer.echo(f"{verb} {project.relative(path)}")
    if plan.restore is not None:
        typer.echo(f"{'would put' if dry_run else 'put'} {project.relative(plan.restore[0])} back as "
                   f"{project.relative(plan.restore[1])}")
    for kept in plan.keep:
        typer.echo(f"kept {kept}")
    typer.echo(f"{'would abort' if dry_run else 'aborted'} {plan.milestone}")


@app.command()
def status(milestone: MilestoneOpt = None, as_json: JsonOpt = False) -> None:
    """Where things stand: the current milestone (or --milestone), its open entries, and the other open milestones."""
    project = _project()
    chosen = milestone or project.current_milestone()
    if chosen is not None and milestone is None and project.find_ledger(chosen) is None:
        chosen = None  # the current pointer names a milestone whose ledger is gone (aborted)
    state = milestones.show(project, chosen) if chosen is not None else None
    known = milestones.list_all(project)
    others = [s for s in known if s.status == "open" and (state is None or s.id != state.id)]
    if as_json:
        data: dict[str, object] = {"current": None, "milestones": len(known),
                                   "latest": known[-1].id if known else None}
        if state is not None:
            open_entries = [e.number for e in milestones.open_entries(state)]
            data = {"current": state.id, "title": state.title, "status": state.status,
                    "entries": len(state.entries), "open_entries": open_entries, "runs": len(state.runs),
                    "sessions": len(state.sessions), "commit": state.commit}
        data["other_open"] = [{"id": s.id, "title": s.title} for s in others]
        print_json(data)
        return
    if state is None:
        typer.echo("no current milestone (start one with `milestone start M01 --title ...`)")
        if known and not others:
            typer.echo(f"{plural(len(known), 'milestone')} in the ledgers, the latest {known[-1].id} "
                       "(`milestone list`)")
    else:
        typer.echo(f"{state.id} — {state.title} [{state.status}] phase {state.phase}")
        typer.echo(f"{plural(len(state.entries), 'entry', 'entries')}, {plural(len(state.runs), 'run')}, "
                   f"{plural(len(state.sessions), 'session')}")
        for entry in milestones.open_entries(state):
            typer.echo(f"  open: entry {entry.label} — {entry.title} ({milestones.status_label(entry)})")
        if state.commit:
            typer.echo(f"closed in commit {state.commit}")
    if others:
        typer.echo(f"other open milestones ({len(others)}; `milestone status --milestone ID`):")
        for other in others:
            typer.echo(f"  {other.id} — {other.title}")


@app.command("list")
def list_milestones(as_json: JsonOpt = False) -> None:
    """Every milestone of the project."""
    states = milestones.list_all(_project())
    rows = [
        {
            "id": s.id,
            "title": s.title,
            "phase": s.phase,
            "status": s.status,
            "entries": len(s.entries),
            "runs": len(s.runs),
        }
        for s in states
    ]
    if as_json:
        print_json(rows)
        return
    for s in states:
        entries = plural(len(s.entries), "entry", "entries")
        typer.echo(f"{s.id:<6} {s.status:<7} phase {s.phase:<3} {entries:>12}  {s.title}")


@app.command()
def show(
    milestone_arg: Annotated[
        Optional[str], typer.Argument(metavar="[MILESTONE]", help="Milestone id (default: current).")
    ] = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A milestone's baseline, sessions, entries, checkpoints and runs."""
    state = milestones.show(_project(), milestone_arg or milestone)
    if as_json:
        data = state.model_dump(mode="json", exclude={"timeline"})
        print_json(data)
        return
    typer.echo(f"{state.id} — {state.title} [{state.status}] phase {state.phase}")
    base = state.baseline
    if milestones.is_history(state):
        typer.echo(f"hand-run history imported from {state.imported_from}; baseline not recorded")
    else:
        sha = base.sha[:7] if base.sha else "none"
        typer.echo(f"baseline: {sha} on {base.branch or 'detached HEAD'} at {base.time}")
    for entry in state.entries:
        # The word alone in this one-line list (❌ FAILED, not its reason cut at 14 characters).
        shown = STATUS_DISPLAY[entry.status] if entry.status else (entry.status_text or "—")
        typer.echo(f"  {entry.label:>5}  {shown[:14]:<14} {entry.title or entry.timestamp}")
    for point in state.checkpoints:
        typer.echo(f"  checkpoint: {point.title}")
    for run in state.runs:
        typer.echo(f"  run {run.id} ({run.kind}, {run.status}) {run.path}")
    if state.commit:
        typer.echo(f"closing commit: {state.commit}")


@app.command()
def render(milestone: MilestoneOpt = None, as_json: JsonOpt = False) -> None:
    """Re-render every tool-calls view from its ledger (or one milestone's)."""
    project = _project()
    rendered = [project.relative(path) for path in milestones.render_views(project, milestone)]
    if as_json:
        print_json({"rendered": rendered})
        return
    for path in rendered:
        typer.echo(f"rendered {path}")


def _checkpoints(state: Milestone) -> int:
    """Checkpoint sections plus the entries that end with a `**CHECKPOINT:**` line."""
    return len(state.checkpoints) + sum(1 for entry in state.entries if entry.checkpoint)


@app.command("import")
def import_log(
    file: Annotated[Optional[Path], typer.Argument(help="A hand-written tool-calls log (Markdown).")] = None,
    all_logs: Annotated[
        bool, typer.Option("--all", help="Every hand-written log under the milestones folder.")
    ] = False,
    milestone: MilestoneOpt = None,
    phase: Annotated[
        Optional[int], typer.Option(help="Phase folder number (default: the log's Phase<N> folder, else the latest).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Adopt a hand-written tool-calls log (or --all of them) as a milestone's ledger; closed history stays closed."""
    from tunix_rt import adoption

    project = _project()
    if all_logs == (file is not None):
        raise TunixError("give either a FILE or --all")
    if all_logs and (milestone or phase is not None):
        raise TunixError("--all takes the id and phase of each log from its name and folder; drop --milestone/--phase")
    if all_logs:
        result = adoption.import_all(project)
        done, skipped = result.imported, result.skipped
    else:
        assert file is not None
        done, skipped = [adoption.import_log(project, file, milestone=milestone, phase=phase)], []
    if as_json:
        rows = [
            {"milestone": d.milestone.id, "title": d.milestone.title, "phase": d.milestone.phase,
             "status": d.milestone.status, "commit": d.milestone.closed.commit if d.milestone.closed else None,
             "closure": d.milestone.closed.closure if d.milestone.closed else None, "source": d.source,
             "entries": len(d.milestone.entries), "checkpoints": _checkpoints(d.milestone),
             "sessions": len(d.milestone.sessions), "kept_raw": d.kept_raw}
            for d in done
        ]
        print_json(rows[0] if file is not None else {"imported": rows, "skipped": [vars(s) for s in skipped]})
        return
    for d in done:
        state = d.milestone
        how = "open"
        if state.closed is not None:
            closed = state.closed
            how = f"closed by commit {closed.commit[:7]}" if closed.commit else f"closed ({closed.closure})"
        typer.echo(
            f"imported {state.id} — {state.title or '(untitled)'} (phase {state.phase}, {how}): "
            f"{plural(len(state.entries), 'entry', 'entries')}, {plural(_checkpoints(state), 'checkpoint')}, "
            f"{plural(len(state.sessions), 'session')}, {plural(len(d.kept_raw), 'raw block')} kept"
        )
    for skip in skipped:
        typer.echo(f"skipped {skip.path}: {skip.reason}")


# --- log ---------------------------------------------------------------------------------------


@log_app.command("entry")
def log_entry(
    title: Annotated[str, typer.Option("--title", "-t", help="Short title of the step.")],
    tool: Annotated[list[str], typer.Option("--tool", help="Tool used (repeatable).")],
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="Why this step is taken.")],
    file: Annotated[Optional[list[str]], typer.Option("--file", "-f", help="File involved (repeatable).")] = None,
    status: Annotated[
        str, typer.Option(help="planned, in-progress, completed, failed, blocked or skipped.")
    ] = "in-progress",
    section: SectionOpt = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="Checkpoint line closing the entry.")] = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Append an entry and print its number."""
    sections = [milestones.parse_section(spec) for spec in section or []]
    entry = milestones.add_entry(
        _project(), milestone, title=title, tools=tool, purpose=purpose, files=file or [],
        status=status, sections=sections, checkpoint=checkpoint,
    )
    if as_json:
        print_json(entry.model_dump(mode="json"))
    else:
        typer.echo(entry.number)


@log_app.command("update")
def log_update(
    number: Annotated[int, typer.Argument(help="Entry number.")],
    status: Annotated[Optional[str], typer.Option(help="New status.")] = None,
    status_text: Annotated[
        Optional[str], typer.Option("--status-text", help="Status as displayed, e.g. 'FAILED — reason'.")
    ] = None,
    section: SectionOpt = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="Checkpoint line closing the entry.")] = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Amend entry N (a new event; nothing is rewritten)."""
    sections = [milestones.parse_section(spec) for spec in section or []]
    entry = milestones.update_entry(
        _project(), milestone, number, status=status, status_text=status_text, sections=sections, checkpoint=checkpoint
    )
    if as_json:
        print_json(entry.model_dump(mode="json"))
    else:
        typer.echo(f"updated entry {entry.label}")


@log_app.command("checkpoint")
def log_checkpoint(
    text: Annotated[str, typer.Argument(help="Checkpoint text.")],
    standalone: Annotated[
        bool, typer.Option("--standalone", help="Write a `## CHECKPOINT: TEXT` section instead.")
    ] = False,
    status: Annotated[Optional[str], typer.Option(help="Status of a standalone checkpoint.")] = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the checkpoint line of the latest entry, or write a checkpoint section."""
    result = milestones.add_checkpoint(_project(), milestone, text, standalone=standalone, status=status)
    if as_json:
        print_json({"standalone": standalone, **result.model_dump(mode="json")})
    elif standalone:
        typer.echo(f"checkpoint section: {text}")
    else:
        typer.echo(f"checkpoint on entry {result.label}")  # type: ignore[union-attr]


@log_app.command("session")
def log_session(
    recovered: Annotated[Optional[str], typer.Option(help="What was recovered from a lost session.")] = None,
    milestone: MilestoneOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a new session heading."""
    session = milestones.start_session(_project(), milestone, recovered=recovered)
    if as_json:
        print_json(session.model_dump(mode="json"))
        return
    typer.echo(f"session {session.number} started {session.started}")


@log_app.command("hook")
def log_hook(
    agent: Annotated[
        Optional[str], typer.Option(help="claude-code, codex, gemini or cursor (default: from the payload).")
    ] = None,
    milestone: MilestoneOpt = None,
) -> None:
    """Record one AI agent hook event from stdin (Claude Code, Codex, Gemini CLI, Cursor).

    Each tool call becomes one entry (its pre and post events fold together); a session start
    answers with a briefing; Stop re-renders the view. Failures exit 1, never 2: the agents read
    exit 2 as "block this tool call". The `milestone` console script runs this without importing typer.
    """
    from tunix_rt.agents import hook

    argv = [*(["--agent", agent] if agent else []), *(["--milestone", milestone] if milestone else [])]
    code = hook.main(argv)
    if code:
        raise typer.Exit(code)


# --- commands contributed by other modules -----------------------------------------------------


def _register_extensions() -> None:
    """Run/plugins/verify and close live in their own modules; each adds its commands here."""
    import importlib

    for name in ("tunix_rt.cli_runs", "tunix_rt.cli_close", "tunix_rt.cli_agent", "tunix_rt.cli_export",
                 "tunix_rt.cli_report"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_extensions()


# --- the one translation point -----------------------------------------------------------------


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"{record.levelname.lower()}: {record.getMessage()}", err=True)


def run(argv: list[str]) -> int:
    """Runs the app on `argv`; returns the exit code. TunixError -> one stderr line and its code."""
    logger = logging.getLogger("tunix_rt")
    handler = _StderrHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        result = app(args=argv, prog_name="milestone", standalone_mode=False)
    except TunixError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    except OSError as exc:
        # The machine failed the work (a full disk, a file too large, a vanished folder): one line, exit 1.
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return 1
    except Exception as exc:
        # Click's usage errors, caught without importing click: one line instead of a usage box.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"error: {exc.format_message()}", err=True)
            return 2
        raise
    finally:
        logger.removeHandler(handler)
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
