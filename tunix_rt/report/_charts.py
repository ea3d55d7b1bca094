"""The report's charts: matplotlib figures written as inline SVG, byte-identical for the same data.

matplotlib is imported inside the drawing function (the CLI stays fast to import) with the Agg backend (no
display). The SVG carries no date and its element ids come from a fixed salt, so two reports of the same
ledger are the same bytes; its text stays text (`svg.fonttype: none`), drawn in the page's own font.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from tunix_rt.report._gather import Curve

_STYLE = {
    "svg.hashsalt": "tunix-rt-report",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "axes.edgecolor": "#8a939c",
}
_PALETTE = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#65a30d", "#db2777"]


def _svg(draw: Callable[[Any], None], size: tuple[float, float]) -> Markup:
    import matplotlib

    matplotlib.use("Agg")
    from cycler import cycler
    from matplotlib import style as styles
    from matplotlib.figure import Figure

    style: Any = {**_STYLE, "axes.prop_cycle": cycler(color=_PALETTE)}  # Any: the stubs key rcParams by Literal
    with styles.context("default"), matplotlib.rc_context(style):  # not the user's matplotlibrc
        figure = Figure(figsize=size, layout="constrained")
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    # The XML prolog and DOCTYPE belong to a file, not to an element inlined in HTML.
    return Markup(text[text.index("<svg"):])


def loss_chart(curves: list[Curve]) -> Markup | None:
    """Training loss (lines) and held-out loss (dots) against the step, one colour per run."""
    if not curves:
        return None

    def draw(axes: Any) -> None:
        for i, curve in enumerate(curves):
            colour = _PALETTE[i % len(_PALETTE)]
            axes.plot(curve.steps, curve.loss, color=colour, linewidth=1.4, label=f"{curve.run} loss")
            if curve.eval_steps:
                axes.plot(curve.eval_steps, curve.eval_loss, "o", color=colour, markersize=3.5,
                          label=f"{curve.run} held-out loss")
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.legend(frameon=False)

    return _svg(draw, (6.4, 3.0))


def primary_chart(points: list[tuple[str, float]], metric: str) -> Markup | None:
    """The headline evaluation's primary score of each milestone that has one, in milestone order."""
    if not points:
        return None

    def draw(axes: Any) -> None:
        names = [name for name, _ in points]
        scores = [score for _, score in points]
        axes.plot(names, scores, "-o", color=_PALETTE[0], linewidth=1.6, markersize=5)
        for name, score in points:
            axes.annotate(f"{score:.3g}", (name, score), textcoords="offset points", xytext=(0, 7), ha="center")
        axes.set_ylabel(metric)
        axes.set_xlabel("milestone")
        top = max(scores)
        axes.set_ylim(0, max(1.0, top * 1.15) if top <= 1 else top * 1.15)

    return _svg(draw, (6.4, 2.6))
