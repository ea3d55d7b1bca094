"""`[tool.tunix-rt]` settings from pyproject.toml (or milestone.toml); every key has a default."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tunix_rt.errors import TunixError


def _inside_repository(value: str) -> str:
    """A path setting names a place inside the repository: relative, no `..`, no drive, no NUL (D09)."""
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if not value.strip() or "\0" in value or PureWindowsPath(value).anchor or value.startswith("/") or ".." in parts:
        raise ValueError("points outside the repository (give a relative path without '..')")
    return value


RepoPath = Annotated[str, AfterValidator(_inside_repository)]


class CloseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    test_command: str | None = Field(None, description="Shell command run as a quality gate at close.")
    master_doc_heading: str | None = Field(
        None, description="Heading before which the Enhancements block is inserted; end of file when unset."
    )
    timeout_s: float = Field(
        900, gt=0, le=7 * 24 * 3600, allow_inf_nan=False, strict=True,
        description="Seconds each hook or test command at close may run before it is stopped.",
    )
    sign: bool = Field(False, strict=True, description="Always close with --sign (a signed in-toto statement).")


class Settings(BaseModel):
    """Project settings; all paths are relative to the repository root, with '/' separators."""

    # Validators are built only when a settings table exists: defaults need no validation, and
    # building them costs milliseconds on the `log entry` path.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    milestones_dir: RepoPath = Field("ProjectFiles/Milestones", description="Folder holding the Phase<N> folders.")
    runs_dir: RepoPath = Field("submission_runs", description="Folder holding run evidence folders.")
    templates_dir: RepoPath = Field("templates", description="Project templates that override the defaults.")
    master_doc: RepoPath = Field("PROJECT.md", description="Master document updated at close.")
    # Numbers are finite and bounded: `nan` compares false with everything and would switch a check off.
    max_file_mb: float = Field(
        10, gt=0, le=1024 * 1024, allow_inf_nan=False, strict=True,
        description="Largest file close will commit (unless tracked by Git LFS).",
    )
    render_timeout_s: float = Field(
        10, gt=0, le=3600, allow_inf_nan=False, strict=True, description="Seconds one template render may run."
    )
    close: CloseSettings = Field(default_factory=CloseSettings)


def load_settings(root: Path) -> Settings:
    """Reads `[tool.tunix-rt]` from pyproject.toml, else milestone.toml, else defaults."""
    table: dict = {}
    source = None
    for name, key_path in (("pyproject.toml", ("tool", "tunix-rt")), ("milestone.toml", ())):
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TunixError(f"{path}: invalid TOML: {exc}") from exc
        for key in key_path:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if data:
            table, source = data, path
            break
    if not table:
        return Settings.model_construct(close=CloseSettings.model_construct())
    try:
        return Settings.model_validate(table)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TunixError(f"{source}: setting {where}: {first['msg']}") from exc
