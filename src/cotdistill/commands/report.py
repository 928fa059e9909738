"""``cotdistill report RUN_DIR... [-o OUT] [--html]``: runs side by side in one table and a bar chart.

``--html`` also writes ``OUT/report.html``: one self-contained page with every question, each
run's rationale, extracted answer and verdict, filters, the chart and the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cotdistill.console import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="put several runs (eval or run directories) side by side: table + PNG chart"
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (or report.json files)")
    parser.add_argument("-o", "--output", type=Path, default=Path("report"), help="output directory (default ./report)")
    parser.add_argument(
        "--metric",
        choices=["strict", "flexible"],
        default=None,
        help="metric to compare (default: each run's headline)",
    )
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write report.html: every question with each run's rationale, answer and verdict, with filters",
    )
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from cotdistill import api
    from cotdistill.report.table import comparison_rows

    comparison = api.compare(args.runs, args.output, metric=args.metric, html=args.html)
    headers, rows = comparison_rows(comparison.runs, metric=args.metric)
    print_table(headers, [[cell.replace("**", "") for cell in row] for row in rows])
    print(f"\ntable: {comparison.markdown}\nchart: {comparison.chart}")
    if comparison.html:
        print(f"page:  {comparison.html}")
    return 0
