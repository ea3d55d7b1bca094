"""The loss curve (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loss_curve(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Train loss per logging step, and held-out eval loss where it was measured."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train loss", marker=".")
    evals = [h for h in history if h.get("eval_loss") is not None]
    if evals:
        ax.plot([h["step"] for h in evals], [h["eval_loss"] for h in evals], label="held-out loss", marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (per completion token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    # Fixed metadata so the same curve gives the same bytes (matplotlib stamps its version otherwise).
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
