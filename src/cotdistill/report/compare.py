"""``cotdistill report``: several runs side by side as ``comparison.md`` + ``accuracy.png``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cotdistill.io import atomic_write_text
from cotdistill.report.plot import plot_accuracy
from cotdistill.report.render import render_runs
from cotdistill.report.runs import Run, load_runs

COMPARISON_MD = "comparison.md"
CHART_PNG = "accuracy.png"


def compare_runs(
    paths: Sequence[str | Path], out_dir: str | Path, *, metric: str | None = None
) -> tuple[list[Run], Path, Path]:
    """Write the side-by-side table and chart of the runs in ``paths``; returns (runs, md, png)."""
    runs = load_runs(paths)
    out = Path(out_dir)
    chart = plot_accuracy(runs, out / CHART_PNG, metric=metric)
    markdown = out / COMPARISON_MD
    atomic_write_text(markdown, render_runs(runs, title="Runs compared", metric=metric, chart=CHART_PNG))
    return runs, markdown, chart
