"""Phase 2 of the report, draw: the gathered views become HTML pages (charts, the tool-calls log, the templates).

Pure: nothing is written here. Everything a page shows is text from the ledger, the logs or the evidence, which
hold untrusted text (a prompt, a model's output, a pasted error), so the templates autoescape, the Markdown
renderer passes no raw HTML through and draws no images (an `![x](https://...)` would make the page fetch it),
and each page's Content-Security-Policy allows no script and no request at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from tunix_rt import render
from tunix_rt.project import Project
from tunix_rt.report import _charts
from tunix_rt.report._gather import Site

INDEX = "index.html"


@dataclass(frozen=True)
class Page:
    name: str  # file name inside the report folder
    html: str


@dataclass(frozen=True)
class Drawn:
    pages: list[Page]


def markdown_html(text: str) -> Markup:
    """A Markdown document as HTML with raw HTML shown as text, links kept, images left out; a line break stays
    one (the logs write one field a line)."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table").disable("image")
    return Markup(parser.render(text))


def draw(project: Project, site: Site) -> Drawn:
    env = render.environment(project.root / project.settings.templates_dir,
                             timeout_s=project.settings.render_timeout_s, html=True)
    scored = [m for m in site.milestones if m.primary_score is not None]
    metrics = sorted({m.primary_metric for m in scored if m.primary_metric})
    chart = _charts.primary_chart([(m.id, float(m.primary_score or 0.0)) for m in scored],
                                  " / ".join(metrics) + " (primary score)")
    pages = [Page(INDEX, _page(env, "report/index.html.j2", site=site, chart=chart, metrics=metrics))]
    for milestone in site.milestones:
        pages.append(Page(milestone.page, _page(
            env, "report/milestone.html.j2", site=site, milestone=milestone,
            loss_chart=_charts.loss_chart(milestone.curves),
            toolcalls=markdown_html(milestone.toolcalls),
        )))
    return Drawn(pages)


def _page(env: Any, name: str, **context: Any) -> str:
    return render.render(env, name, **context).rstrip("\n") + "\n"

