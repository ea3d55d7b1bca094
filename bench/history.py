"""A milestone with a long history, written straight to its ledger (for the benchmarks only)."""

from __future__ import annotations


def append_entries(project, milestone_id: str, count: int, *, failed_every: int = 0, attempts: bool = False) -> None:
    """Appends `count` completed entries (every `failed_every`-th failed) in one write, then renders the view."""
    from tunix_rt import clock, ledger, views
    from tunix_rt.models import Entry, EntryAdded, Section

    path = project.ledger(milestone_id)
    stamp = clock.stamp()
    sections = [Section(name="Results", items=["loss 1.0 -> 0.5", "ok"])]
    if attempts:
        sections.append(Section(name="Attempts", items=["first", "second"], ordered=True))
    with ledger.writer(path) as w:
        w.append(*[
            EntryAdded(time=stamp, entry=Entry(
                number=n, label=str(n), title=f"Step {n}", timestamp=stamp, tools=["run_terminal_cmd"],
                purpose="Benchmark history", files=["train.py"],
                status="failed" if failed_every and n % failed_every == 0 else "completed",
                sections=sections,
            ))
            for n in range(1, count + 1)
        ])
    views.render_full(project, milestone_id, path)
