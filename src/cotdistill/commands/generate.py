"""``cotdistill generate recipe.yaml [key=value ...] [-o DIR]``: teacher rationales for a question set.

The recipe names the questions (an examples JSONL file, a suite directory, or a suite config
built into ``DIR/suite``) and a ``generate:`` section (``GenerateConfig``: teacher, k,
temperature, keep policy, ...). Killed runs resume with the same command; a run where more
than ``generate.max_failure_rate`` of the samples failed, or that the server refused (401, 403,
404), exits non-zero after saving what it has. Example::

    questions: runs/suite              # or questions.jsonl, or a `suite:` config to build
    roles: [source]
    output_dir: runs/rationales
    generate:
      k: 4
      temperature: 0.7
      keep: correct                    # correct | majority | all
      rationalize: true
      teacher:
        backend: openai                # openai | hf | oracle
        base_url: http://127.0.0.1:8000/v1
        model: smollm2
        api_key_env: OPENAI_API_KEY    # the key is read from this variable, never saved
        concurrency: 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="sample, filter and store teacher rationales (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="recipe YAML (questions + generate section)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. generate.k=4 generate.teacher.backend=hf")
    parser.add_argument("-o", "--output", help="output directory (overrides output_dir)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cotdistill import api
    from cotdistill.config import load_config
    from cotdistill.distill.generate import STATS_NAME, STORE_NAME, GenerationFailedError
    from cotdistill.distill.recipe import GenerateRecipe, select_questions
    from cotdistill.distill.stats import stats_table
    from cotdistill.errors import ConfigError

    recipe = load_config(GenerateRecipe, args.recipe, args.overrides)
    out_dir = Path(args.output or recipe.output_dir)
    examples, tasks, shots = select_questions(recipe, out_dir)
    if not examples:
        raise ConfigError(f"{args.recipe}: no questions selected (check questions, roles, domains, split)")
    try:
        rationales = api.generate(
            examples, out_dir, recipe.generate, tasks=tasks, shots=shots, show_progress=not args.no_progress
        )
    except GenerationFailedError:
        print(stats_table(json.loads((out_dir / STATS_NAME).read_text(encoding="utf-8"))))
        raise
    stats = rationales.stats
    print(stats_table(stats))
    print(f"\nteacher {stats['teacher']}; rationales: {out_dir / STORE_NAME}; stats: {out_dir / STATS_NAME}")
    return 0
