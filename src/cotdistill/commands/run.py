"""``cotdistill run [recipe.yaml] [key=value ...] [--output DIR] [--resume]``: run a whole recipe.

With no recipe the embedded default runs (``cotdistill/recipes/default.yaml``): a suite, oracle
teacher rationales, a tiny student per method variant, evaluation and the comparison report.
The output directory is locked for the run: a second run on it stops with an error naming the first.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a recipe end to end (no recipe: the built-in default comparison on CPU)",
        description="Overrides are dotted recipe keys, e.g. seeds=[0,1,2] train.epochs=4 eval.limit=50.",
    )
    parser.add_argument("recipe", nargs="?", default=None, help="recipe YAML (default: the embedded default recipe)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
    parser.add_argument("-o", "--output", type=Path, default=None, help="run directory (default runs/<recipe name>)")
    parser.add_argument("--resume", action="store_true", help="continue a run in an existing output directory")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cotdistill import api

    recipe_path, overrides = args.recipe, list(args.overrides)
    if recipe_path is not None and "=" in recipe_path and not Path(recipe_path).exists():
        recipe_path, overrides = None, [recipe_path, *overrides]  # `cotdistill run key=value` without a recipe
    report_dir = api.run(recipe_path, args.output, overrides=overrides, resume=args.resume)
    print(f"done: {report_dir}")
    return 0
