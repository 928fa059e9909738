"""``cotdistill eval CHECKPOINT --suite DIR [key=value ...]``: score a student on a suite's domains."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cotdistill.console import print_table

if TYPE_CHECKING:
    from cotdistill.tasks.base import Example
    from cotdistill.tasks.suite import Suite


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
    from cotdistill.config import load_config, save_config
    from cotdistill.eval import EvalConfig, evaluate
    from cotdistill.models import StudentConfig, load_student
    from cotdistill.models.student import STUDENT_FILE, Student
    from cotdistill.report.runs import runs_of
    from cotdistill.report.table import comparison_rows
    from cotdistill.tasks.suite import load_suite

    overrides = [*args.overrides, *([f"shots={args.shots}"] if args.shots is not None else [])]
    cfg = load_config(EvalConfig, args.config, overrides)
    suite = load_suite(args.suite)
    domains = suite.domains()
    if args.domains:
        wanted = [d.strip() for d in args.domains.split(",") if d.strip()]
        for domain in wanted:
            suite.info(domain)  # unknown names raise with a suggestion
        domains = wanted
    output = args.output or (
        args.checkpoint / "eval" if args.checkpoint.is_dir() else Path("eval") / args.checkpoint.name
    )
    if (args.checkpoint / STUDENT_FILE).exists():
        student = Student.load(args.checkpoint)
    else:
        student = load_student(StudentConfig(model=str(args.checkpoint)))
    report = evaluate(
        student,
        {d: suite.examples(d, cfg.split) for d in domains},
        {d: suite.roles[d] for d in domains},
        cfg,
        output,
        tasks={d: suite.task(d) for d in domains},
        meta={"checkpoint": str(args.checkpoint), "suite": str(args.suite)},
        shot_pool={d: _shot_pool(suite, d, cfg.split) for d in domains} if cfg.shots else None,
    )
    save_config(cfg, output / "eval.yaml")
    headers, rows = comparison_rows(runs_of(report, str(args.checkpoint.name)))
    print_table(headers, [[cell.replace("**", "") for cell in row] for row in rows])
    print(f"\nreport: {output / 'report.md'}\ndata:   {output / 'report.json'}")
    return 0


def _shot_pool(suite: Suite, domain: str, split: str) -> list[Example]:
    """Labelled examples few-shot prompts draw from: the train split, else dev, else the evaluated split."""
    for candidate in ("train", "dev"):
        if candidate != split:
            labelled = [e for e in suite.examples(domain, candidate) if e.answer]
            if labelled:
                return labelled
    return suite.examples(domain, split)
