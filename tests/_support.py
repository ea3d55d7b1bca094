"""Helpers shared by test modules (never imported from one test module into another)."""

from __future__ import annotations

from pathlib import Path


def add_setting(root: Path, line: str) -> None:
    """Appends a top-level `[tool.tunix-rt]` setting to the project's milestone.toml (what `init` writes
    where there is no pyproject.toml)."""
    toml = root / "milestone.toml"
    name = line.split("=", 1)[0].strip()
    kept = [old for old in toml.read_text(encoding="utf-8").splitlines() if old.split("=", 1)[0].strip() != name]
    toml.write_text("\n".join([*kept, line]) + "\n", encoding="utf-8")
