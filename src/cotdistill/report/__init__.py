"""Reports: report.json -> markdown, several runs side by side, accuracy bar charts, report.html."""

from cotdistill.report.compare import compare_runs
from cotdistill.report.html import write_html_report
from cotdistill.report.plot import plot_accuracy
from cotdistill.report.render import render_comparison, render_eval, render_runs, write_eval_markdown
from cotdistill.report.runs import Run, load_runs, read_report, runs_of

__all__ = [
    "Run",
    "compare_runs",
    "load_runs",
    "plot_accuracy",
    "read_report",
    "render_comparison",
    "render_eval",
    "render_runs",
    "runs_of",
    "write_eval_markdown",
    "write_html_report",
]
