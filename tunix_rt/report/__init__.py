"""The `milestone report` use case: a static HTML site of every milestone, read top to bottom as its phases:

1. gather (`_gather.py`) every ledger, tool-calls view and run folder (metrics, eval summary, predictions, verify)
2. draw   (`_draw.py`)   charts as inline SVG, the logs as HTML, the pages through `templates/report/`; pure
3. write  (`_write.py`)  the pages into a new folder that replaces the previous report in one rename

Each phase hands the next a typed object. The site needs no server and makes no request: one folder of HTML
files with their CSS and charts inside, the same bytes for the same ledger and evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunix_rt.project import Project
from tunix_rt.report._draw import INDEX, draw
from tunix_rt.report._gather import gather
from tunix_rt.report._write import write

# Hidden, under the project, and ignored by a `.gitignore` of its own: nothing to add to the project's rules.
DEFAULT_FOLDER = ".tunix-report"


@dataclass(frozen=True)
class Written:
    out: Path
    pages: list[Path]

    @property
    def index(self) -> Path:
        return self.out / INDEX

    def to_json(self) -> dict[str, object]:
        return {"out": str(self.out), "index": str(self.index), "pages": [p.name for p in self.pages]}


def build(project: Project, out: Path | None = None) -> Written:
    """Writes the report to `out` (default `<repo>/.tunix-report/`)."""
    folder = (out if out is not None else project.root / DEFAULT_FOLDER).absolute()
    site = gather(project)
    drawn = draw(project, site)
    return Written(folder, write(drawn, folder))
