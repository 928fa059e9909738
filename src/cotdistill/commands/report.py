"""``cotdistill report RUN_DIR... [-o OUT]``: runs side by side in one table and a bar chart."""

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
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from cotdistill.report import compare_runs
    from cotdistill.report.table import comparison_rows

    runs, markdown, chart = compare_runs(args.runs, args.output, metric=args.metric)
    headers, rows = comparison_rows(runs, metric=args.metric)
    print_table(headers, [[cell.replace("**", "") for cell in row] for row in rows])
    print(f"\ntable: {markdown}\nchart: {chart}")
    return 0
