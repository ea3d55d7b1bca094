"""`milestone init`: settings, folders, ignore rules for weights and the master document."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt.project import Project

IGNORE_MARKER = "# tunix-rt: model weights and checkpoints stay out of git (evidence files stay in)"

DEFAULT_MILESTONES_DIR = "ProjectFiles/Milestones"
DEFAULT_MASTER_DOC = "PROJECT.md"


def settings_table(milestones_dir: str, master_doc: str, found: str | None = None) -> str:
    """The `[tool.tunix-rt]` table init writes; `found` is the line saying what it detected in the repository."""
    comment = f"# milestone init found: {found}\n" if found else ""
    return (
        f"[tool.tunix-rt]\n{comment}"
        f'milestones_dir = "{milestones_dir}"\n'
        'runs_dir = "submission_runs"\n'
        'templates_dir = "templates"\n'
        f'master_doc = "{master_doc}"\n'
        "max_file_mb = 10\n"
    )


def ignore_rules(runs_dir: str) -> list[str]:
    """Scoped to the runs folder: a global `*.bin` would silently hide unrelated deliverables."""
    return [
        f"{runs_dir}/**/final_model/",
        f"{runs_dir}/**/checkpoints/",
        f"{runs_dir}/**/*.safetensors",
        f"{runs_dir}/**/*.bin",
        f"{runs_dir}/**/*.pt",
        f"{runs_dir}/**/*.ckpt",
    ]


@dataclass
class InitResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    found: Found | None = None  # what an existing repository already had (None when settings existed)


def _append_text(path: Path, text: str) -> None:
    existing = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    separator = "\n" if existing else ""
    path.write_text(existing + separator + text, encoding="utf-8", newline="\n")


def _write_settings(project: Project, result: InitResult) -> None:
    pyproject = project.root / "pyproject.toml"
    toml = project.root / "milestone.toml"
    if pyproject.exists() and "[tool.tunix-rt]" in pyproject.read_text(encoding="utf-8"):
        result.unchanged.append("pyproject.toml")
        return
    if not pyproject.exists() and toml.exists():
        result.unchanged.append("milestone.toml")
        return
    found = detect(project.root)
    result.found = found
    table = settings_table(found.milestones_dir or DEFAULT_MILESTONES_DIR, found.master_doc or DEFAULT_MASTER_DOC,
                           found.line() if found.anything() else None)
    if pyproject.exists():
        _append_text(pyproject, table)
        result.written.append("pyproject.toml")
    else:
        toml.write_text(table.split("\n", 1)[1], encoding="utf-8", newline="\n")
        result.written.append("milestone.toml")


def _missing_ignore_rules(project: Project, rules: list[str]) -> list[str]:
    """The rules that neither appear in .gitignore nor are covered by an existing rule (probed with check-ignore)."""
    from tunix_rt import vcs

    gitignore = project.root / ".gitignore"
    present = set()
    if gitignore.exists():
        present = {line.strip() for line in gitignore.read_text(encoding="utf-8", errors="replace").splitlines()}
    candidates = [rule for rule in rules if rule not in present]
    probes = {rule.replace("**", "_probe_run_").replace("*.", "model."): rule for rule in candidates}
    covered = vcs.ignored_paths(vcs.open_repo(project.root), list(probes))
    return [rule for probe, rule in probes.items() if probe not in covered]


def init(project: Project) -> InitResult:
    """Idempotent: running it twice changes nothing the second time.

    In a repository that already holds hand-run milestones it records what it finds (the milestones folder, its
    phase folders, the master document) instead of creating a second of any, and adds only missing ignore rules.
    """
    result = InitResult()
    _write_settings(project, result)
    project.__dict__.pop("settings", None)  # re-read what was just written
    settings = project.settings
    for target in (project.milestones_dir, project.runs_dir, project.root / settings.master_doc):
        project.check_inside(target)  # the settings are relative, but a symlinked folder may lead out (D09)

    for folder in (project.milestones_dir, project.runs_dir):
        if folder.is_dir():
            result.unchanged.append(project.relative(folder) + "/")
        else:
            folder.mkdir(parents=True)
            result.written.append(project.relative(folder) + "/")

    missing = _missing_ignore_rules(project, ignore_rules(settings.runs_dir))
    if missing:
        _append_text(project.root / ".gitignore", "\n".join([IGNORE_MARKER, *missing]) + "\n")
        result.written.append(".gitignore")
    else:
        result.unchanged.append(".gitignore")

    master = project.root / settings.master_doc
    if master.exists():
        result.unchanged.append(settings.master_doc)
    else:
        master.parent.mkdir(parents=True, exist_ok=True)
        master.write_text(
            f"# {project.root.name}\n\n**No milestone complete yet**\n\n## Overview\n\n"
            "<!-- What this project is, in one paragraph. `milestone close` adds a block per milestone below. -->\n",
            encoding="utf-8",
            newline="\n",
        )
        result.written.append(settings.master_doc)
    return result


# --- detection in an existing repository ---------------------------------------------------------------------

_SKIP_DIRS = {"node_modules", "venv", "site-packages", "__pycache__", "dist", "build"}
_PHASE = re.compile(r"Phase[0-9]+")
_MILESTONE_DOC = re.compile(r"[Mm][0-9]{1,6}_.*\.md")
_COMPLETE_LINE = re.compile(r"^\*\*Milestone\s+[Mm][0-9]{1,6}\s+Complete\*\*", re.M)
_BLOCK_LINE = re.compile(r"^\*\*[Mm][0-9]{1,6}\s+Enhancements:\*\*", re.M)


@dataclass
class Found:
    """What `init` found in an existing repository; empty fields mean nothing was there."""

    milestones_dir: str | None = None
    phases: list[str] = field(default_factory=list)
    milestone_docs: int = 0
    master_doc: str | None = None

    def anything(self) -> bool:
        return bool(self.milestones_dir or self.master_doc)

    def line(self) -> str:
        parts = []
        if self.milestones_dir:
            phases = ", ".join(self.phases) if self.phases else "no Phase<N> folders"
            docs = f"{self.milestone_docs} milestone documents"
            parts.append(f"milestones folder {self.milestones_dir} ({phases}; {docs})")
        if self.master_doc:
            parts.append(f"master doc {self.master_doc}")
        return "; ".join(parts) if parts else "nothing from earlier milestones"


def _walk(root: Path, depth: int):
    """Folders under `root` down to `depth` levels, skipping hidden, virtual-env and dependency folders."""
    base = len(root.parts)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in _SKIP_DIRS and len(here.parts) - base < depth
        )
        yield here, dirs, sorted(files)


def _milestone_docs(folder: Path) -> int:
    return sum(1 for _, _, files in _walk(folder, 3) for name in files if _MILESTONE_DOC.fullmatch(name))


def _find_milestones_dir(root: Path) -> Path | None:
    """The default folder when it exists, else the folder with `Phase<N>` subfolders holding the most `Mnn_*.md`."""
    default = root / DEFAULT_MILESTONES_DIR
    if default.is_dir():
        return default
    best: tuple[int, str, Path] | None = None
    for folder, dirs, _ in _walk(root, 4):
        if any(_PHASE.fullmatch(d) for d in dirs):
            key = (_milestone_docs(folder), str(folder), folder)
            if best is None or key[0] > best[0]:
                best = key
    return best[2] if best else None


def _master_score(path: Path) -> tuple[int, bool, str] | None:
    """Sort key of a master-doc candidate (most Enhancements blocks, README last), or None when it is not one."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not _COMPLETE_LINE.search(text):
        return None
    return (-len(_BLOCK_LINE.findall(text)), path.name.lower() == "readme.md", str(path))


def _find_master_doc(root: Path, milestones: Path | None) -> Path | None:
    """A Markdown file outside the milestones folder with `**Milestone Mnn Complete**` lines; the root first,
    and among several the one with the most `**Mnn Enhancements:**` blocks."""
    at_root = [root / name for name in sorted(os.listdir(root)) if name.lower().endswith(".md")]
    deeper = [
        folder / name
        for folder, _, files in _walk(root, 3)
        if folder != root and not (milestones is not None and (folder == milestones or milestones in folder.parents))
        for name in files
        if name.lower().endswith(".md")
    ]
    for group in (at_root, deeper):
        scored = [score for score in map(_master_score, group) if score is not None]
        if scored:
            return Path(min(scored)[2])
    return None


def detect(root: Path) -> Found:
    """The milestones folder, its phase folders and the master document a hand-run project already has."""
    found = Found()
    milestones = _find_milestones_dir(root)
    if milestones is not None:
        found.milestone_docs = _milestone_docs(milestones)
        found.phases = sorted(
            (child.name for child in milestones.iterdir() if child.is_dir() and _PHASE.fullmatch(child.name)),
            key=lambda name: int(name[5:]),
        )
        if found.milestone_docs or found.phases:
            found.milestones_dir = milestones.relative_to(root).as_posix()
    master = _find_master_doc(root, milestones)
    if master is not None:
        found.master_doc = master.relative_to(root).as_posix()
    return found
