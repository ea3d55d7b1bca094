"""`milestone init`: settings, folders, ignore rules for weights and the master document."""

from __future__ import annotations

from dataclasses import dataclass, field

from tunix_rt.project import Project

IGNORE_MARKER = "# tunix-rt: model weights and checkpoints stay out of git (evidence files stay in)"

SETTINGS_TABLE = """[tool.tunix-rt]
milestones_dir = "ProjectFiles/Milestones"
runs_dir = "submission_runs"
templates_dir = "templates"
master_doc = "PROJECT.md"
max_file_mb = 10
"""


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


def _append_text(path, text: str) -> None:
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    separator = "\n" if existing else ""
    path.write_text(existing + separator + text, encoding="utf-8", newline="\n")


def init(project: Project) -> InitResult:
    """Idempotent: running it twice changes nothing the second time."""
    result = InitResult()
    pyproject = project.root / "pyproject.toml"
    if pyproject.exists():
        if "[tool.tunix-rt]" in pyproject.read_text(encoding="utf-8"):
            result.unchanged.append("pyproject.toml")
        else:
            _append_text(pyproject, SETTINGS_TABLE)
            result.written.append("pyproject.toml")
    else:
        toml = project.root / "milestone.toml"
        if toml.exists():
            result.unchanged.append("milestone.toml")
        else:
            toml.write_text(SETTINGS_TABLE.split("\n", 1)[1], encoding="utf-8", newline="\n")
            result.written.append("milestone.toml")
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

    gitignore = project.root / ".gitignore"
    current = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if IGNORE_MARKER in current:
        result.unchanged.append(".gitignore")
    else:
        _append_text(gitignore, "\n".join([IGNORE_MARKER, *ignore_rules(settings.runs_dir)]) + "\n")
        result.written.append(".gitignore")

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
