"""The `milestone close` use case: checks, quality gates, the rendered summary and audit, the master doc, one commit.

Order, and why:
1. Under the ledger lock, fold the ledger and gather every fact (files since the baseline, runs,
   evidence). A ledger that already says closed while no commit carries `Milestone: MNN` is a
   close that was interrupted after its ledger event: it resumes instead of refusing.
2. Checks; if any fails nothing has been written (exit 2, every problem with its reason).
3. pre-commit on the milestone's work (its own documents are written in final form and are not
   hooked), then the optional test command: their results go into the summary.
4. Render the summary, the audit, the commit message and the master-doc block from the ledger,
   git and the evidence files; numbers are read, never typed.
5. Write the documents, append `milestone_closed`, stage and commit in one step (vcs.commit_paths).
   A failure after the append takes the event back (`truncate`), so HEAD, the index and the
   ledger are as they were; rendered files may remain and a re-run finishes the job.

The closing commit's SHA is never written into a committed file: `show` finds the commit by its
trailer. Files that were dirty when the milestone started and have not changed since are not the
milestone's work: they are neither counted nor committed, and the summary lists them apart.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt import clock, hooks, ledger, masterdoc, render
from tunix_rt.errors import TunixError, WorkFailed
from tunix_rt.ids import milestone_number, run_prefix
from tunix_rt.models import STATUS_DISPLAY, ClosedInfo, Milestone, MilestoneClosed, Run
from tunix_rt.project import Project
from tunix_rt.redact import redact, scan

OPEN_STATUSES = ("in-progress", "planned")
EVIDENCE_FILES = (
    "run_manifest.json",
    "config.yaml",
    "env_snapshot.json",
    "training_log.txt",
    "metrics.jsonl",
    "eval_summary.json",
    "predictions.jsonl",
    "loss_curve.png",
    "artifacts.json",
)
FAILED_SECTIONS = ("Attempts", "Conclusion", "Resolution")
PLACEHOLDER_SUMMARY = "_No executive summary was given: pass `--summary TEXT|@file` or fill the plan's Objective._"
_COMMENT = re.compile(r"<!--.*?-->", re.S)


# --- results -------------------------------------------------------------------------------------


@dataclass
class FileRow:
    path: str
    change: str
    insertions: int | None
    deletions: int | None
    group: str = "work"  # work | document | evidence

    @property
    def plus(self) -> str:
        return "-" if self.insertions is None else str(self.insertions)

    @property
    def minus(self) -> str:
        return "-" if self.deletions is None else str(self.deletions)


@dataclass
class Totals:
    files: int = 0
    insertions: int = 0
    deletions: int = 0

    @classmethod
    def of(cls, rows: list[FileRow]) -> Totals:
        return cls(
            files=len(rows),
            insertions=sum(r.insertions or 0 for r in rows),
            deletions=sum(r.deletions or 0 for r in rows),
        )

    def line(self) -> str:
        """Worded exactly as `git diff --shortstat` words it."""
        parts = [f"{self.files} file{'s' if self.files != 1 else ''} changed"]
        if self.insertions or not self.deletions:
            parts.append(f"{self.insertions} insertion{'s' if self.insertions != 1 else ''}(+)")
        if self.deletions or not self.insertions:
            parts.append(f"{self.deletions} deletion{'s' if self.deletions != 1 else ''}(-)")
        return ", ".join(parts)


@dataclass
class Check:
    """One machine-checked gate, as the audit shows it."""

    name: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)


@dataclass
class CloseResult:
    milestone: str
    title: str
    dry_run: bool
    no_commit: bool
    resumed: bool
    commit: str | None
    tag: str | None
    files: list[str]  # what the commit carries (or would)
    written: list[str]  # documents written to disk
    summary: str  # the rendered summary
    audit: str
    message: str  # the commit message
    warnings: list[str]
    checks: list[Check]
    hooks: hooks.HooksResult
    tests: hooks.CommandResult | None
    work: Totals
    whole: Totals

    def to_json(self) -> dict[str, Any]:
        return {
            "milestone": self.milestone,
            "title": self.title,
            "dry_run": self.dry_run,
            "no_commit": self.no_commit,
            "resumed": self.resumed,
            "commit": self.commit,
            "tag": self.tag,
            "files": self.files,
            "written": self.written,
            "warnings": self.warnings,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "hooks": {
                "ran": self.hooks.ran,
                "skipped_reason": self.hooks.skipped_reason,
                "passed": self.hooks.passed,
                "runs": len(self.hooks.runs),
                "modified": self.hooks.modified,
                "counts": self.hooks.counts(),
            },
            "tests": None
            if self.tests is None
            else {"command": self.tests.command, "returncode": self.tests.returncode, "counts": self.tests.counts},
            "work": vars(self.work),
            "whole": vars(self.whole),
            "message": self.message,
        }


# --- small readers (defensive: evidence written by any plugin version) ----------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-step lines and the merged final line(s) of a `metrics.jsonl`."""
    steps: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return steps, final
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if any(key in record for key in ("train_runtime", "final_loss", "train_loss")) or "step" not in record:
            final.update(record)
        else:
            steps.append(record)
    return steps, final


def evenly_spaced(rows: list[Any], count: int = 10) -> list[Any]:
    """About `count` rows, first and last included, evenly spaced."""
    if len(rows) <= count:
        return list(rows)
    picks = sorted({round(i * (len(rows) - 1) / (count - 1)) for i in range(count)})
    return [rows[i] for i in picks]


def fmt(value: Any) -> str:
    """A value as the evidence holds it (no rounding: the summary must equal the files); None -> —."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    for unit in ("KB", "MB", "GB"):
        size_f = size / 1024
        if size_f < 1024 or unit == "GB":
            return f"{size_f:.1f} {unit}"
        size = int(size_f)
    return f"{size} B"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as dotted keys, in file order."""
    rows: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                rows.extend(flatten(value, name))
            else:
                rows.append((name, value))
    elif prefix:
        rows.append((prefix, data))
    return rows


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def _doc_is_empty(path: Path) -> bool:
    """A people-written document that holds nothing but its scaffold (headings and comments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return True
    text = _COMMENT.sub("", text)
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return not body


def plan_objective(path: Path) -> str:
    """The text under the plan's `## Objective` heading (comments dropped), or ''."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    match = re.search(r"^#{2,3}[^\n]*\bObjective\b[^\n]*\n(?P<body>.*?)(?=^#{1,3} |\Z)", text, re.M | re.S | re.I)
    if not match:
        return ""
    return _COMMENT.sub("", match.group("body")).strip()


# --- facts about runs ---------------------------------------------------------------------------


@dataclass
class RunFacts:
    """Everything the summary shows about one run, read from its evidence folder."""

    run: Run
    folder: str
    config_rows: list[tuple[str, str]]
    performance: list[tuple[str, str]]
    loss_rows: list[dict[str, str]]
    final_loss: Any
    final: dict[str, Any]
    png: str | None  # link relative to the summary's folder
    eval_overall: list[tuple[str, str]]
    eval_breakdowns: list[dict[str, Any]]
    artifacts: list[dict[str, str]]
    environment: list[tuple[str, str]]
    manifest: dict[str, Any]
    verify: str  # "ok (N files)" or the problem


def _eval_tables(data: Any) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Overall scalars and per-category (section, difficulty...) breakdown tables of an eval summary."""
    if not isinstance(data, dict):
        return [], []
    overall: list[tuple[str, str]] = []
    breakdowns: list[dict[str, Any]] = []
    overall_key = "totals" if isinstance(data.get("totals"), dict) else None  # eval_summary.json's contract
    source = data[overall_key] if overall_key else data
    for key, value in source.items():
        if isinstance(value, (int, float, bool)) or (isinstance(value, str) and len(value) < 80):
            overall.append((key, fmt(value)))
    for key, value in data.items():
        if not isinstance(value, dict) or key == overall_key or not value:
            continue
        if not all(isinstance(v, (dict, int, float)) for v in value.values()):
            continue
        columns: list[str] = []
        for v in value.values():
            for col in v if isinstance(v, dict) else ["value"]:
                if col not in columns:
                    columns.append(col)
        rows = []
        for name, v in value.items():
            cells = [fmt(v.get(col)) if isinstance(v, dict) else fmt(v) for col in columns]
            rows.append({"name": name, "cells": cells})
        breakdowns.append({"name": key, "columns": columns, "rows": rows})
    return overall, breakdowns


def _environment_rows(data: Any) -> list[tuple[str, str]]:
    rows = []
    for key, value in flatten(data if isinstance(data, dict) else {}):
        if value is None:
            continue
        text = fmt(value)
        if isinstance(value, str) and "\n" in value:
            text = value.strip().splitlines()[0].replace("|", "\\|") + " …"
        rows.append((key, text))
    return rows


def run_facts(project: Project, run: Run, summary_dir: Path) -> RunFacts:
    folder = project.root / run.path
    steps, final = read_metrics(folder / "metrics.jsonl")
    config_rows: list[tuple[str, str]] = []
    config_path = folder / "config.yaml"
    if config_path.is_file():
        import yaml

        try:
            config_rows = [(k, fmt(v)) for k, v in flatten(yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})]
        except yaml.YAMLError:
            config_rows = [("config.yaml", "unreadable YAML")]
    # The evidence contract (metrics.jsonl's final line, as the trainer issue defines it); a key a
    # plugin did not write shows as "—", nothing is guessed from look-alike names.
    last_step = steps[-1] if steps else {}
    performance = [
        ("Steps", fmt(final.get("step", last_step.get("step")))),
        ("Epochs", fmt(final.get("epoch", last_step.get("epoch")))),
        ("Runtime (s)", fmt(final.get("train_runtime"))),
        ("Samples/s", fmt(final.get("train_samples_per_second"))),
        ("Non-pad tokens/s", fmt(final.get("train_tokens_per_second"))),
        ("Padding fraction", fmt(final.get("padding_fraction"))),
        ("MFU", fmt(final.get("mfu"))),
        ("Train loss (run average)", fmt(final.get("train_loss"))),
        ("Final loss (last step)", fmt(final.get("final_loss"))),
    ]
    loss_rows = [
        {
            "step": fmt(row.get("step")),
            "epoch": fmt(row.get("epoch")),
            "loss": fmt(row.get("loss")),
            "learning_rate": fmt(row.get("learning_rate")),
            "grad_norm": fmt(row.get("grad_norm")),
        }
        for row in evenly_spaced([r for r in steps if r.get("loss") is not None])
    ]
    png_path = folder / "loss_curve.png"
    png = Path(os.path.relpath(png_path, summary_dir)).as_posix() if png_path.is_file() else None
    eval_overall, eval_breakdowns = _eval_tables(_read_json(folder / "eval_summary.json"))
    artifacts = []
    listed = _read_json(folder / "artifacts.json")
    for item in listed.get("files", []) if isinstance(listed, dict) else []:
        if isinstance(item, dict):
            artifacts.append(
                {
                    "path": str(item.get("path", "")),
                    "size": human_size(int(item.get("bytes", 0) or 0)),
                    "bytes": str(item.get("bytes", "")),
                    "sha256": str(item.get("sha256", ""))[:12],
                    "tracked": "yes" if item.get("tracked", True) else "no (ignored)",
                }
            )
    manifest = _read_json(folder / "run_manifest.json")
    return RunFacts(
        run=run,
        folder=run.path,
        config_rows=config_rows,
        performance=performance,
        loss_rows=loss_rows,
        final_loss=_first(final, "final_loss", "train_loss"),
        final=final,
        png=png,
        eval_overall=eval_overall,
        eval_breakdowns=eval_breakdowns,
        artifacts=artifacts,
        environment=_environment_rows(_read_json(folder / "env_snapshot.json")),
        manifest=manifest if isinstance(manifest, dict) else {},
        verify="",
    )


def _loss_of(project: Project, run: Run) -> float | None:
    _, final = read_metrics(project.root / run.path / "metrics.jsonl")
    value = _first(final, "final_loss", "train_loss") if final else _first(run.metrics, "final_loss", "train_loss")
    return float(value) if isinstance(value, (int, float)) else None


def best_run(project: Project, runs: list[Run]) -> Run | None:
    """The completed training run with the lowest final loss (the milestone's headline run)."""
    scored = [(loss, i, r) for i, r in enumerate(runs) if r.kind == "train" and r.status == "completed"
              for loss in [_loss_of(project, r)] if loss is not None]
    return min(scored)[2] if scored else None


def previous_best(project: Project, state: Milestone) -> tuple[str, Run] | None:
    """The best run of the nearest earlier milestone that has one."""
    number = milestone_number(state.id)
    for mid, path in reversed(project.all_ledgers()):
        if milestone_number(mid) >= number:
            continue
        try:
            earlier = ledger.load(path)
        except TunixError:
            continue
        run = best_run(project, earlier.runs)
        if run is not None:
            return mid, run
    return None


def comparison(project: Project, previous: tuple[str, Run] | None, current: Run | None) -> dict[str, Any] | None:
    if previous is None or current is None:
        return None
    mid, before = previous
    _, old = read_metrics(project.root / before.path / "metrics.jsonl")
    _, new = read_metrics(project.root / current.path / "metrics.jsonl")
    rows = []
    for label, keys in (
        ("Final loss", ("final_loss",)),
        ("Train loss (run average)", ("train_loss",)),
        ("Steps", ("step",)),
        ("Runtime (s)", ("train_runtime",)),
        ("Samples/s", ("train_samples_per_second",)),
        ("Non-pad tokens/s", ("train_tokens_per_second",)),
        ("MFU", ("mfu",)),
    ):
        a = _first(old, *keys)
        if a is None:
            a = _first(before.metrics, *keys)
        b = _first(new, *keys)
        if b is None:
            b = _first(current.metrics, *keys)
        if a is None and b is None:
            continue
        change = "—"
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            delta = b - a
            change = f"{delta:+.6g}" + (f" ({delta / a * 100:+.1f} %)" if a else "")
        rows.append({"metric": label, "before": fmt(a), "after": fmt(b), "change": change})
    return {"milestone": mid, "run": before.id, "current": current.id, "rows": rows}


# --- which files are whose ----------------------------------------------------------------------


@dataclass
class Layout:
    """Paths of the milestone's own documents and evidence (relative, '/')."""

    folder: str
    mid: str
    ledger: str
    summary: str
    audit: str
    toolcalls: str
    master: str
    run_folders: list[str]
    run_prefix: str

    def group(self, path: str) -> str:
        name = path.rsplit("/", 1)[-1]
        if path == self.master or (
            path.startswith(self.folder + "/") and (name.startswith(self.mid + "_") or name.startswith(self.mid + "."))
        ):
            return "document"
        if any(path == f or path.startswith(f + "/") for f in self.run_folders) or path.startswith(self.run_prefix):
            return "evidence"
        return "work"


def layout(project: Project, state: Milestone) -> Layout:
    ledger_path = project.ledger(state.id)
    folder = project.relative(ledger_path.parent)
    return Layout(
        folder=folder,
        mid=state.id,
        ledger=project.relative(ledger_path),
        summary=f"{folder}/{state.id}_summary.md",
        audit=f"{folder}/{state.id}_audit.md",
        toolcalls=f"{folder}/{state.id}_toolcalls.md",
        master=Path(project.settings.master_doc).as_posix(),
        run_folders=sorted({run.path.rstrip("/") for run in state.runs}),
        run_prefix=f"{Path(project.settings.runs_dir).as_posix().rstrip('/')}/{run_prefix(state.id)}_",
    )


def _patch_sections(text: str) -> dict[str, str]:
    """A `git diff` patch split per file, keyed by the b/ path of its header."""
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            if current is not None:
                sections[current] = "\n".join(lines).rstrip("\n")
            match = re.match(r"diff --git a/(.*) b/(.*)$", line)
            current = match.group(2) if match else line
            lines = [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        sections[current] = "\n".join(lines).rstrip("\n")
    return sections


def unchanged_since_start(project: Project, repo: Any, state: Milestone) -> set[str]:
    """Files dirty when the milestone started that have not changed since: not the milestone's work.

    A tracked file counts as changed when its diff against the baseline differs from the one in the
    patch recorded at start; an untracked one when it was modified after the baseline time.
    """
    from tunix_rt import vcs

    baseline = state.baseline
    if not baseline.dirty_files:
        return set()
    recorded: dict[str, str] = {}
    if baseline.diff_patch:
        candidate = project.root / baseline.diff_patch
        text = baseline.diff_patch
        if "\n" not in baseline.diff_patch and candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace")
        recorded = _patch_sections(text)
    from datetime import datetime

    started = datetime.fromisoformat(baseline.time.replace("Z", "+00:00")).timestamp()
    unchanged: set[str] = set()
    for path in baseline.dirty_files:
        full = project.root / path
        if path in recorded:
            now_patch, _ = redact(vcs.file_patch(repo, baseline.sha, path))
            if now_patch.rstrip("\n") == recorded[path]:
                unchanged.add(path)
        elif full.exists() and full.stat().st_mtime <= started:
            unchanged.add(path)
    return unchanged


# --- the use case ---------------------------------------------------------------------------------


def _summary_text(summary: str | None) -> str | None:
    if summary is None:
        return None
    if summary.startswith("@"):
        path = Path(summary[1:])
        try:
            summary = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TunixError(f"--summary {summary}: cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise TunixError(f"--summary {summary}: {path} is not UTF-8 text") from None
    from tunix_rt.milestones import required

    return required(summary, "--summary")  # redacted like every other text that reaches a document


def _problem_error(mid: str, problems: list[str]) -> TunixError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return TunixError(f"cannot close {mid}: {len(problems)} problem(s); nothing was written\n{lines}")


def _files_check(project: Project, repo: Any, paths: list[str], contents: dict[str, bytes]) -> tuple[Check, Check]:
    """Large files (unless Git LFS tracks them) and secrets, over every file the commit carries."""
    from tunix_rt import vcs

    limit = project.settings.max_file_mb * 1024 * 1024
    large: list[str] = []
    secrets: list[str] = []
    sizes: dict[str, int] = {}
    for path in paths:
        if path in contents:
            sizes[path] = len(contents[path])
        else:
            full = project.root / path
            if full.is_file():
                sizes[path] = full.stat().st_size
    oversized = [p for p, size in sizes.items() if size > limit]
    lfs = vcs.lfs_paths(repo, oversized) if oversized else set()
    for path in oversized:
        if path not in lfs:
            large.append(
                f"{path} is {sizes[path] / 1024 / 1024:.1f} MB, over max_file_mb = {project.settings.max_file_mb:g}"
                " (track it with Git LFS, ignore it, or raise max_file_mb)"
            )
    scanned = 0
    for path in sizes:
        if path in lfs:
            continue
        data = contents.get(path)
        if data is None:
            try:
                data = (project.root / path).read_bytes()
            except OSError:
                continue
        if vcs.is_binary_bytes(data):
            continue
        scanned += 1
        for finding in scan(data.decode("utf-8", "replace")):
            secrets.append(f"{path}:{finding.line} holds a secret ({finding.kind})")
    large_check = Check(
        "Large files",
        not large,
        f"none over {project.settings.max_file_mb:g} MB ({len(sizes)} files)" if not large else f"{len(large)} over the limit",
        large,
    )
    secret_check = Check(
        "Secrets scan",
        not secrets,
        f"no secret in {scanned} text files" if not secrets else f"{len(secrets)} finding(s)",
        secrets,
    )
    return large_check, secret_check


def _entry_paths(state: Milestone) -> list[str]:
    """Path-like tokens from the entries' files lists (`path` — note, path (145 traces), ...)."""
    found: list[str] = []
    for entry in state.entries:
        for item in entry.files:
            token = item.strip().strip("`").split()[0].strip("`,") if item.strip() else ""
            if token and not token.startswith(("http:", "https:")) and ("/" in token or "." in token) and ".." not in token:
                if not Path(token).is_absolute() and token not in found:
                    found.append(token.rstrip("/") if token != "/" else token)
    return found


def close(
    project: Project,
    milestone: str | None = None,
    *,
    dry_run: bool = False,
    no_commit: bool = False,
    skip_hooks: bool = False,
    force: bool = False,
    tag: bool = False,
    summary: str | None = None,
) -> CloseResult:
    """Closes a milestone (see the module docstring); returns what it did and prints nothing."""
    from tunix_rt import vcs, views

    mid = project.resolve_milestone(milestone)
    path = project.ledger(mid)
    given_summary = _summary_text(summary)
    warnings: list[str] = []
    if given_summary is not None:
        given_summary, kinds = redact(given_summary)
        if kinds:
            warnings.append(f"redacted {', '.join(sorted(set(kinds)))} from --summary")
    repo = vcs.open_repo(project.root)
    vcs.clear_stale_close_lock(repo)

    with ledger.writer(path) as w:
        state = ledger.fold(path, w.events())
        resumed = False
        if state.status == "closed":
            sha = vcs.trailer_commit(repo, mid)
            if sha is not None:
                raise TunixError(f"milestone {mid} is already closed (commit {sha[:12]})")
            resumed = True  # the ledger event exists but the commit does not: finish the job
        lay = layout(project, state)
        summary_dir = project.root / lay.folder

        # --- gather ----------------------------------------------------------------------------
        problems: list[str] = []
        checks: list[Check] = []
        open_entries = [e for e in state.entries if e.status in OPEN_STATUSES]
        running = [r for r in state.runs if r.status == "running"]
        forced = force or (resumed and state.closed is not None and state.closed.forced)
        if open_entries or running:
            listed = [f"entry {e.label} ({STATUS_DISPLAY[e.status]}): {e.title or e.purpose}" for e in open_entries]
            listed += [f"run {r.id} is still running" for r in running]
            if forced:
                warnings.append(f"closing with {len(listed)} open item(s) (--force): " + "; ".join(listed))
            else:
                problems.extend(f"{item} is not finished (finish it with `milestone log update`, or --force)" for item in listed)
        checks.append(
            Check(
                "Open entries",
                not open_entries and not running,
                "none" if not (open_entries or running) else f"{len(open_entries)} open, {len(running)} running"
                + (" (closed with --force)" if forced else ""),
            )
        )
        for kind in ("plan", "answers"):
            doc = summary_dir / f"{mid}_{kind}.md"
            if _doc_is_empty(doc):
                warnings.append(f"{project.relative(doc)} is empty (nothing beyond its scaffold)")

        # Evidence: every run's files must match the hashes in its artifacts.json.
        from tunix_rt import evidence

        facts: list[RunFacts] = []
        evidence_problems: list[str] = []
        for run in state.runs:
            fact = run_facts(project, run, summary_dir)
            try:
                report = evidence.verify(project, run.path)
            except (TunixError, OSError, ValueError) as exc:
                evidence_problems.append(f"run {run.id}: evidence cannot be verified: {str(exc).splitlines()[0]}")
                fact.verify = "not verifiable"
            else:
                bad = [f"{p} changed since it was hashed" for p in report.changed]
                bad += [f"{p} is missing" for p in report.missing]
                if report.manifest_error:
                    bad.append(report.manifest_error)
                evidence_problems.extend(f"run {run.id}: {b}" for b in bad)
                fact.verify = f"ok ({report.checked} files)" if not bad else f"FAILED ({len(bad)} problem(s))"
            facts.append(fact)
        problems.extend(evidence_problems)
        checks.append(
            Check(
                "Evidence hashes",
                not evidence_problems,
                f"{len(state.runs)} run(s) verified (sha256)" if not evidence_problems else f"{len(evidence_problems)} problem(s)",
                evidence_problems,
            )
        )

        # Files since the baseline, split into the work and the milestone's own documents/evidence.
        changes = vcs.changed_since(repo, state.baseline.sha)
        left_alone = unchanged_since_start(project, repo, state)
        rendered_paths = [lay.summary, lay.audit, lay.toolcalls, lay.ledger, lay.master]

        def classify(stats: list[Any]) -> tuple[list[FileRow], list[FileRow]]:
            work_rows, own_rows = [], []
            for s in stats:
                if s.path in left_alone or s.path in rendered_paths:
                    continue
                row = FileRow(s.path, s.change, s.insertions, s.deletions, lay.group(s.path))
                (work_rows if row.group == "work" else own_rows).append(row)
            return work_rows, own_rows

        work_rows, own_rows = classify(changes)

        # Deliverables that git would silently leave out.
        deliverables = list(rendered_paths)
        for kind in ("plan", "questions", "answers"):
            if (summary_dir / f"{mid}_{kind}.md").exists():
                deliverables.append(f"{lay.folder}/{mid}_{kind}.md")
        for run in state.runs:
            for name in EVIDENCE_FILES:
                if (project.root / run.path / name).is_file():
                    deliverables.append(f"{run.path}/{name}")
            listed = _read_json(project.root / run.path / "artifacts.json")
            for item in listed.get("files", []) if isinstance(listed, dict) else []:
                if isinstance(item, dict) and item.get("tracked") and item.get("path"):
                    deliverables.append(str(item["path"]))
        deliverables = list(dict.fromkeys(deliverables))
        rules = vcs.ignore_rules(repo, deliverables)
        ignored_problems = [
            f"{p} would not be committed: ignored by {r.source}:{r.line} (pattern `{r.pattern}`)" for p, r in rules.items()
        ]
        problems.extend(ignored_problems)
        checks.append(
            Check(
                "Ignored deliverables",
                not ignored_problems,
                f"all {len(deliverables)} documents and evidence files are committable"
                if not ignored_problems
                else f"{len(ignored_problems)} ignored",
                ignored_problems,
            )
        )
        entry_paths = [p for p in _entry_paths(state) if p not in rules]
        ignored_listed = vcs.ignore_rules(repo, entry_paths) if entry_paths else {}
        for p, r in ignored_listed.items():
            warnings.append(f"{p} (listed by an entry) is ignored by {r.source}:{r.line} (`{r.pattern}`): not committed")

        if tag and vcs.tag_exists(repo, run_prefix(mid)):
            problems.append(f"tag {run_prefix(mid)} already exists (drop --tag or delete the tag)")
        if not dry_run and not no_commit:
            identity = vcs.identity_problem(repo)
            if identity:
                problems.append(identity)

        # Large files and secrets over what exists now; the rendered documents are scanned after rendering.
        existing_commit = [r.path for r in work_rows + own_rows if r.change != "deleted"]
        large_check, secret_check = _files_check(project, repo, existing_commit + [lay.ledger], {})
        problems.extend(large_check.problems + secret_check.problems)
        if problems:
            raise _problem_error(mid, problems)

        # --- quality gates -------------------------------------------------------------------------
        hook_files = [r.path for r in work_rows if r.change != "deleted"]
        if dry_run:
            hook_result = hooks.HooksResult(ran=False, skipped_reason="dry run: not run")
        elif skip_hooks:
            hook_result = hooks.HooksResult(ran=False, skipped_reason="skipped (--skip-hooks)")
        else:
            hook_result = hooks.run_hooks(project.root, hook_files)
            if not hook_result.passed:
                failing = hook_result.failing()
                names = ", ".join(h.id for h in failing) or "pre-commit"
                named = sorted({f for h in failing for f in hook_files if f in h.output})
                detail = "\n".join(f"  {line}" for h in failing for line in h.output.splitlines()[:12])
                raise WorkFailed(
                    f"pre-commit hook(s) failed: {names}"
                    + (f" on {', '.join(named)}" if named else "")
                    + f" (after {len(hook_result.runs)} run(s)); nothing was committed\n{detail}"
                )
            if hook_result.modified:
                changes = vcs.changed_since(repo, state.baseline.sha)
                work_rows, own_rows = classify(changes)
        tests: hooks.CommandResult | None = None
        command = project.settings.close.test_command
        if command and not dry_run:
            tests = hooks.run_command(project.root, command)
            if not tests.passed and not forced:
                tail = "\n".join(f"  {line}" for line in tests.output.strip().splitlines()[-12:])
                raise WorkFailed(f"test command failed (exit {tests.returncode}): {command}; nothing was committed\n{tail}")

        # --- render ----------------------------------------------------------------------------------
        now = clock.stamp()
        closed_info = (
            state.closed
            if resumed and state.closed is not None
            else ClosedInfo(
                time=now,
                forced=bool(forced and (open_entries or running)),
                open_entries=[e.number for e in open_entries],
                skipped_hooks=skip_hooks,
            )
        )
        event = MilestoneClosed(time=closed_info.time, closed=closed_info)
        final_state = state.model_copy(deep=True)
        final_state.status = "closed"
        final_state.closed = closed_info
        ledger_bytes = os.pread(w.fd, w.size, 0) + (b"" if resumed else ledger.encode(event))
        env = views.environment(project)
        toolcalls_text = render.render_toolcalls(env, final_state)
        master_path = project.root / lay.master
        master_before = master_path.read_text(encoding="utf-8") if master_path.is_file() else None

        best = best_run(project, state.runs)
        compare = comparison(project, previous_best(project, state), best)
        branch = vcs.current_branch(repo)
        executive = given_summary or plan_objective(summary_dir / f"{mid}_plan.md")
        summary_flagged = not executive
        if summary_flagged:
            executive = PLACEHOLDER_SUMMARY
            warnings.append("no executive summary: pass --summary or fill the plan's Objective (the audit flags it)")
        secret_check_final = secret_check
        headline = _headline(project, state, best, facts)
        for fact in facts:
            if not fact.png and fact.run.kind == "train":
                warnings.append(f"run {fact.run.id} has no loss_curve.png")

        baseline_bytes = {p: vcs.blob_text(repo, state.baseline.sha, p) for p in rendered_paths}
        doc_rows: dict[str, FileRow] = {}
        texts: dict[str, str] = {}
        master_text = master_before or ""
        for _ in range(5):  # the summary lists its own line counts: render until they are stable
            context = dict(
                milestone=final_state,
                mid=mid,
                title=state.title or "(untitled)",
                status_display=STATUS_DISPLAY,
                closed=closed_info,
                date=closed_info.time,
                branch=branch or "(detached HEAD)",
                baseline=state.baseline.sha,
                executive=executive,
                summary_flagged=summary_flagged,
                facts=facts,
                best=best,
                compare=compare,
                failures=[e for e in state.entries if e.status in ("failed", "blocked")],
                failed_sections=FAILED_SECTIONS,
                open_entries=open_entries,
                work_rows=work_rows,
                own_rows=sorted(own_rows + list(doc_rows.values()), key=lambda r: r.path),
                work=Totals.of(work_rows),
                own=Totals.of(own_rows + list(doc_rows.values())),
                whole=Totals.of(work_rows + own_rows + list(doc_rows.values())),
                left_alone=sorted(left_alone),
                hooks=hook_result,
                tests=tests,
                checks=checks + [large_check, secret_check_final],
                warnings=warnings,
                headline=headline,
                status_counts=_status_counts(state),
                dry_run=dry_run,
                environment=_hardware(facts, state),
                tag=run_prefix(mid) if tag else None,
                layout=lay,
                fmt=fmt,
            )
            texts["summary"] = render.normalise(render.render(env, "summary.md.j2", **context))
            texts["audit"] = render.normalise(render.render(env, "audit.md.j2", **context))
            block = render.render(env, "master_entry.md.j2", **context).strip("\n")
            master_text = masterdoc.update(
                master_before,
                mid,
                block,
                heading=project.settings.close.master_doc_heading,
                title=project.root.name,
            )
            contents = {
                lay.summary: texts["summary"].encode("utf-8"),
                lay.audit: texts["audit"].encode("utf-8"),
                lay.toolcalls: toolcalls_text.encode("utf-8"),
                lay.ledger: ledger_bytes,
                lay.master: master_text.encode("utf-8"),
            }
            new_rows = {}
            for p, data in contents.items():
                old = baseline_bytes[p]
                if old == data:
                    continue
                if old is None:
                    binary = vcs.is_binary_bytes(data)
                    new_rows[p] = FileRow(p, "added", None if binary else vcs.count_lines(data), None if binary else 0, "document")
                else:
                    ins, dels = vcs.numstat_text(old, data)
                    new_rows[p] = FileRow(p, "modified", ins, dels, "document")
            if {p: (r.insertions, r.deletions) for p, r in new_rows.items()} == {
                p: (r.insertions, r.deletions) for p, r in doc_rows.items()
            }:
                break
            doc_rows = new_rows
        context["tag"] = run_prefix(mid) if tag else None
        message = render.render(env, "commit_message.txt.j2", **context).strip("\n") + "\n"
        if f"Milestone: {mid}" not in message.splitlines():
            message = message.rstrip("\n") + f"\n\nMilestone: {mid}\n"

        rendered_secrets = [
            f"{p}:{f.line} holds a secret ({f.kind})"
            for p in (lay.summary, lay.audit, lay.master)
            for f in scan(contents[p].decode("utf-8"))
        ]
        if rendered_secrets:
            raise _problem_error(mid, rendered_secrets)

        commit_files = sorted(
            {r.path for r in work_rows + own_rows} | set(doc_rows) | {lay.summary, lay.audit, lay.toolcalls, lay.ledger, lay.master}
        )
        result = CloseResult(
            milestone=mid,
            title=state.title,
            dry_run=dry_run,
            no_commit=no_commit,
            resumed=resumed,
            commit=None,
            tag=run_prefix(mid) if tag else None,
            files=commit_files,
            written=[],
            summary=texts["summary"],
            audit=texts["audit"],
            message=message,
            warnings=warnings,
            checks=context["checks"],
            hooks=hook_result,
            tests=tests,
            work=context["work"],
            whole=context["whole"],
        )
        if dry_run:
            return result

        # --- write -------------------------------------------------------------------------------------
        for p in (lay.summary, lay.audit, lay.master):
            target = project.root / p
            target.parent.mkdir(parents=True, exist_ok=True)
            views.write_atomic(target, contents[p].decode("utf-8"))
            result.written.append(p)
        if no_commit:
            return result

        # --- the transaction: ledger event + one commit -------------------------------------------------
        if not resumed:
            w.append(event)
        try:
            views.render_full(project, mid, path, w)
            result.commit = vcs.commit_paths(repo, commit_files, message, tag=result.tag)
        except BaseException as exc:
            w.truncate(w.size_before)
            if isinstance(exc, TunixError):
                raise
            if isinstance(exc, Exception):
                raise WorkFailed(f"close failed while committing: {exc}; the ledger and the index are as they were") from exc
            raise
        result.written.append(lay.toolcalls)
        return result


def _headline(project: Project, state: Milestone, best: Run | None, facts: list[RunFacts]) -> str:
    """The commit subject's result: the best run's final loss and throughput plus the latest eval score.

    Rounded to four significant digits for a one-line subject; the summary and the evidence keep
    the exact values.
    """
    if best is not None:
        fact = next(f for f in facts if f.run.id == best.id)
        parts = [f"final loss {_short(fact.final_loss)}"]
        speed = _first(fact.final, "train_samples_per_second")
        if speed is not None:
            parts.append(f"{_short(speed)} samples/s")
        evals = [f for f in facts if f.run.kind == "eval"] or [fact]
        data = _read_json(project.root / evals[-1].run.path / "eval_summary.json")
        if isinstance(data, dict) and isinstance(data.get("totals"), dict):
            metric = data.get("primary_metric") or "exact"
            totals = data["totals"]
            if metric in totals and "n" in totals:
                parts.append(f"eval {metric} {totals[metric]}/{totals['n']}")
        return ", ".join(parts) + f" ({best.id})"
    done = sum(1 for e in state.entries if e.status == "completed")
    return f"{done} of {len(state.entries)} entries completed"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else fmt(value)


def _hardware(facts: list[RunFacts], state: Milestone) -> list[tuple[str, str]]:
    """The environment of the last run that recorded one, else the baseline's snapshot."""
    for fact in reversed(facts):
        if fact.environment:
            return fact.environment
    env = state.baseline.environment
    return _environment_rows(env.model_dump(mode="json"))


def _status_counts(state: Milestone) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for entry in state.entries:
        name = STATUS_DISPLAY[entry.status] if entry.status else "without status"
        counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items())
