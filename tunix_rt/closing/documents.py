"""Phase 4 of close, render: the summary, the audit, the master-doc block and the commit message, from the facts,
the checks and the gates. Pure: nothing is written here, and no lock is held."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunix_rt import clock, ledger, masterdoc, render, views
from tunix_rt.closing.checks import GENERATED_MARKER, Check, CheckReport, Options
from tunix_rt.closing.facts import Facts
from tunix_rt.closing.gates import Gates
from tunix_rt.closing.runs import Row
from tunix_rt.closing.text import FileRow, Totals
from tunix_rt.ids import run_prefix
from tunix_rt.models import OPEN_STATUSES, STATUS_DISPLAY, ClosedInfo, MilestoneClosed
from tunix_rt.project import Project

PLACEHOLDER_SUMMARY = "_No executive summary was given: pass `--summary TEXT|@file` or fill the plan's Objective._"


@dataclass(frozen=True)
class ThresholdRow:
    expression: str
    measured: str
    run: str
    met: bool
    note: str  # "set after m44_v1", "changed from eval.primary_score>=0.3"


@dataclass(frozen=True)
class Documents:
    """Everything close writes and commits, rendered."""

    summary: str
    audit: str
    toolcalls: views.Rendered
    master: str  # the whole new master document
    master_block: str
    message: str
    ledger: bytes  # the ledger as the commit will hold it (with the closing event)
    event: MilestoneClosed | None  # None when resuming an interrupted close
    doc_rows: list[FileRow]

    def contents(self, facts: Facts) -> dict[str, bytes]:
        lay = facts.layout
        return {
            lay.summary: self.summary.encode("utf-8"),
            lay.audit: self.audit.encode("utf-8"),
            lay.toolcalls: self.toolcalls.text.encode("utf-8"),
            lay.ledger: self.ledger,
            lay.master: self.master.encode("utf-8"),
        }


def _threshold_rows(facts: Facts) -> list[ThresholdRow]:
    rows = []
    for held, judged in zip(facts.state.thresholds, facts.judged):
        notes = []
        if held.replaced is not None:
            notes.append(f"changed from `{held.replaced.expression}`")
        if held.runs_before:
            notes.append(f"set after run(s) {', '.join(held.runs_before)}")
        rows.append(ThresholdRow(held.threshold.expression, judged.measured_text, judged.run or "—", judged.met,
                                 "; ".join(notes)))
    return rows


def _key_numbers(facts: Facts) -> list[Row]:
    head = facts.headline
    rows = []
    if head.train is not None:
        rows += [Row(r.label, r.value) for r in head.train.performance[:6]]
    if head.evaluation is not None and head.evaluation.eval is not None:
        rows.append(Row(f"Eval ({head.evaluation.run.id})", head.evaluation.eval.primary_label()))
    return rows


def _by_folder(rows: list[FileRow], folders: tuple[str, ...]) -> list[FileRow]:
    """Evidence rows folded into one row per run folder (its files are listed in its artifacts.json)."""
    kept: list[FileRow] = []
    grouped: dict[str, list[FileRow]] = {}
    for row in rows:
        folder = next((f for f in folders if row.path.startswith(f + "/")), None)
        if folder is None:
            kept.append(row)
        else:
            grouped.setdefault(folder, []).append(row)
    for folder, members in grouped.items():
        changes = sorted({m.change for m in members})
        totals = Totals.of(members)
        kept.append(FileRow(f"{folder}/ ({len(members)} files)", "/".join(changes), totals.insertions,
                            totals.deletions, "evidence"))
    return sorted(kept, key=lambda r: r.path)


def _status_counts(facts: Facts) -> str:
    counts: dict[str, int] = {}
    for entry in facts.state.entries:
        name = STATUS_DISPLAY[entry.status] if entry.status else "without status"
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "none"


def _environment(facts: Facts) -> list[Row]:
    for fact in reversed(facts.runs):
        if fact.environment:
            return fact.environment
    env = facts.state.baseline.environment
    rows = [Row("python", env.python), Row("platform", env.platform)]
    rows += [Row(f"packages.{k}", v) for k, v in env.packages.items() if v]
    return rows


def closed_info(facts: Facts, report: CheckReport, options: Options, gates: Gates, executive: str,
                checks: list[Check]) -> ClosedInfo:
    if facts.resumed and facts.state.closed is not None:
        return facts.state.closed
    from tunix_rt.closing import record

    open_entries = [e.number for e in facts.state.entries if e.status in OPEN_STATUSES]
    running = any(r.status == "running" for r in facts.state.runs)
    return ClosedInfo(time=clock.stamp(), forced=bool(options.force and (open_entries or running)),
                      open_entries=open_entries, skipped_hooks=options.skip_hooks,
                      unmet_thresholds=list(report.unmet),
                      rendered_from=record.capture(facts, report, gates, options, executive, checks))


def _context(project: Project, facts: Facts, report: CheckReport, gates: Gates, options: Options, info: ClosedInfo,
             executive: str, doc_rows: list[FileRow], final_checks: list[Check]) -> dict[str, Any]:
    state, lay, changes = facts.state, facts.layout, facts.changes
    own = sorted(changes.own + doc_rows, key=lambda r: r.path)
    return dict(
        marker=GENERATED_MARKER + " from " + lay.ledger.rsplit("/", 1)[-1] + "; re-run close, never edit -->",
        master_marker=masterdoc.GENERATED,
        mid=facts.mid,
        title=state.title or "(untitled)",
        phase=state.phase,
        date=info.time,
        draft=options.dry_run or options.no_commit,
        dry_run=options.dry_run,
        branch=facts.branch or "(detached HEAD)",
        baseline=(state.baseline.sha or "")[:12],
        executive=executive,
        summary_flagged=executive == PLACEHOLDER_SUMMARY,
        headline=facts.headline.text,
        key_numbers=_key_numbers(facts),
        best_train=facts.headline.train.run.id if facts.headline.train else None,
        headline_eval=facts.headline.evaluation.run.id if facts.headline.evaluation else None,
        thresholds=_threshold_rows(facts),
        unmet=list(info.unmet_thresholds),
        forced=list(report.forced),
        closed_forced=info.forced,
        open_entries=[e for e in state.entries if e.number in info.open_entries],
        compare=facts.comparison,
        failures=facts.failures,
        samples=facts.samples,
        notes=facts.notes,
        entries=len(state.entries),
        status_counts=_status_counts(facts),
        runs=facts.runs,
        environment=_environment(facts),
        work_rows=changes.work,
        own_rows=_by_folder(own, lay.run_folders),
        work=Totals.of(changes.work),
        own=Totals.of(own),
        whole=Totals.of(changes.work + own),
        left_alone=changes.left_alone,
        others=[f"{path} ({other})" for path, other in changes.others],
        hooks=gates.hooks,
        tests=gates.tests,
        checks=report.checks + final_checks,
        warnings=facts.warnings + report.warnings,
        layout=lay,
        tag=run_prefix(facts.mid) if options.tag else None,
        status_display=STATUS_DISPLAY,
    )


def _master(project: Project, facts: Facts, context: dict[str, Any], env: Any, before: str | None) -> tuple[str, str]:
    """The new block and the whole master document. A document that already holds blocks written by people
    (an adopted project) gets the block in its own format; otherwise the `master_entry.md.j2` template."""
    heading = project.settings.close.master_doc_heading
    written = [b for b in masterdoc.blocks(before or "") if not masterdoc.is_generated(b)]
    if not written:
        block = render.render(env, "master_entry.md.j2", **context).strip("\n")
        return block, masterdoc.update(before, facts.mid, block, heading=heading, title=project.root.name)
    assert before is not None
    style = masterdoc.detect_format(before)
    lines = [("Result", facts.headline.text)]
    if facts.judged:
        lines.append(("Acceptance", "; ".join(f"{j.threshold.expression} {j.measured_text} "
                                               f"{'met' if j.met else 'NOT MET'}" for j in facts.judged)))
    lines += [("Files changed", context["whole"].line), ("Summary", f"`{facts.layout.summary}`")]
    block = masterdoc.render_block(style, facts.mid, context["title"], lines, phase=facts.state.phase)
    block += "\n" + masterdoc.GENERATED
    text = masterdoc.update(before, facts.mid, block, heading=heading or style.insert_before, title=project.root.name)
    if style.status_field:
        text = masterdoc.set_status_field(text, facts.mid, facts.headline.text)
    return block, text


LEDGER_HEAD_TRAILER = "Milestone-Ledger-Head"


def with_trailers(message: str, mid: str, ledger_bytes: bytes) -> str:
    """The message with `Milestone: M44` (which `show` finds the commit by) and, right after it, the head of
    the ledger the commit holds: `verify` checks the chain's last link against it, so a line cut from the
    end or forged after it is caught too (the chain alone covers only what follows each line)."""
    lines = message.strip("\n").splitlines()
    trailer = f"Milestone: {mid}"
    if trailer not in lines:
        lines += ["", trailer]
    lines = [line for line in lines if not line.startswith(f"{LEDGER_HEAD_TRAILER}:")]
    at = lines.index(trailer) + 1
    lines.insert(at, f"{LEDGER_HEAD_TRAILER}: {ledger.head(ledger_bytes)}")
    return "\n".join(lines) + "\n"


def render_documents(project: Project, facts: Facts, report: CheckReport, gates: Gates, options: Options,
                     executive: str, final_checks: list[Check], master_before: str | None) -> Documents:
    """Renders until the summary's own line counts are stable (it lists the diffstat of the files it is part of).

    Pure given its inputs (`master_before`: the master doc before this close): `verify` calls it again with
    the inputs the close recorded and must get the same bytes."""
    from tunix_rt import vcs

    lay = facts.layout
    info = closed_info(facts, report, options, gates, executive, report.checks + final_checks)
    event = None if facts.resumed else MilestoneClosed(time=info.time, closed=info)
    ledger_bytes = facts.ledger_bytes + (ledger.encode(event, ledger.head(facts.ledger_bytes)) if event else b"")
    final_state = facts.state.model_copy(update={"status": "closed", "closed": info})  # shallow: nothing changes it
    env = views.environment(project)
    toolcalls = views.with_header(project, project.root / lay.ledger, len(facts.ledger_bytes), facts.state,
                                  final_state) or views.full_text(project, final_state)
    repo = vcs.open_repo(project.root)
    baseline_bytes = {p: vcs.blob_text(repo, facts.state.baseline.sha, p) for p in lay.documents}
    doc_rows: list[FileRow] = []
    summary = audit = block = master = ""
    for _ in range(5):
        context = _context(project, facts, report, gates, options, info, executive, doc_rows, final_checks)
        summary = render.normalise(render.render(env, "summary.md.j2", **context))
        audit = render.normalise(render.render(env, "audit.md.j2", **context))
        block, master = _master(project, facts, context, env, master_before)
        contents = {lay.summary: summary.encode("utf-8"), lay.audit: audit.encode("utf-8"),
                    lay.toolcalls: toolcalls.text.encode("utf-8"), lay.ledger: ledger_bytes,
                    lay.master: master.encode("utf-8")}
        rows = []
        for path, data in contents.items():
            old = baseline_bytes[path]
            if old == data:
                continue
            if old is None:
                binary = vcs.is_binary_bytes(data)
                rows.append(FileRow(path, "added", None if binary else vcs.count_lines(data), None if binary else 0,
                                    "document"))
            else:
                ins, dels = vcs.numstat_text(old, data)
                rows.append(FileRow(path, "modified", ins, dels, "document"))
        if rows == doc_rows:
            break
        doc_rows = rows
    message = with_trailers(render.render(env, "commit_message.txt.j2", **context), facts.mid, ledger_bytes)
    return Documents(summary, audit, toolcalls, master, block, message, ledger_bytes, event, doc_rows)
