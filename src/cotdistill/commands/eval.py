"""``cotdistill eval CHECKPOINT --suite DIR [key=value ...]``: score a student on a suite's domains."""

from __future__ import annotations

import argparse
from pathlib import Path

from cotdistill.console import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a student checkpoint on a suite (per domain, in- vs out-of-domain, 95%% intervals)",
        description="Overrides are EvalConfig fields, e.g. max_new_tokens=128 num_samples=5 temperature=0.7 limit=50.",
    )
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="a student checkpoint (written by train or run), or any model `student.model` accepts "
        "(a pulled preset such as smollm2-135m-instruct, a HF directory, a .gguf file) for a zero-shot baseline",
    )
    parser.add_argument("--suite", type=Path, required=True, help="suite directory (manifest.json + JSONL splits)")
    parser.add_argument("--config", type=Path, default=None, help="YAML file of EvalConfig fields")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output directory (default CHECKPOINT/eval, or eval/NAME for a model name)",
    )
    parser.add_argument("--domains", default=None, help="comma-separated domains to evaluate (default: all)")
    parser.add_argument(
        "--shots",
        type=int,
        default=None,
        help="few-shot: solved questions of the same domain (from its train split, else dev) before each question",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="EvalConfig overrides")
    parser.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from cotdistill import api
    from cotdistill.config import load_config, save_config
    from cotdistill.eval import EvalConfig
    from cotdistill.report.runs import runs_of
    from cotdistill.report.table import comparison_rows

    overrides = [*args.overrides, *([f"shots={args.shots}"] if args.shots is not None else [])]
    cfg = load_config(EvalConfig, args.config, overrides)
    domains = [d.strip() for d in args.domains.split(",") if d.strip()] if args.domains else None
    output = args.output or (
        args.checkpoint / "eval" if args.checkpoint.is_dir() else Path("eval") / args.checkpoint.name
    )
    report = api.evaluate(
        args.checkpoint,
        api.load_suite(args.suite),
        output,
        cfg,
        domains=domains,
        meta={"checkpoint": str(args.checkpoint), "suite": str(args.suite)},
    )
    save_config(cfg, output / "eval.yaml")
    headers, rows = comparison_rows(runs_of(report, str(args.checkpoint.name)))
    print_table(headers, [[cell.replace("**", "") for cell in row] for row in rows])
    print(f"\nreport: {output / 'report.md'}\ndata:   {output / 'report.json'}")
    return 0
