"""``cotdistill train recipe.yaml [key=value ...]``: train a student on rationales and save it.

The recipe names the data (a ``rationales.jsonl`` from ``cotdistill generate``, whose kept
samples are used, or an examples JSONL with ``rationale`` fields), the student, the method and
its arguments, and the shared training settings. The trained student is written to
``<output>/final`` (with step checkpoints beside it; ``--resume`` continues a killed run).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.config import from_dict, load_config, save_config
from cotdistill.errors import DataError
from cotdistill.methods.base import TrainConfig
from cotdistill.models.loading import StudentConfig

log = logging.getLogger(__name__)

EXAMPLE = """example recipe:
  data: out/rationales.jsonl      # or an examples JSONL with rationales
  unlabelled: null                # optional JSONL of target-domain questions (PRADA)
  student: {model: tiny}          # or smollm2-135m-instruct with finetune: lora
  method: sft
  method_args: {multitask: false}
  train: {epochs: 3, lr: 3.0e-3, batch_size: 16}
  output: runs/train
"""


@dataclass
class TrainRecipe:
    """What ``cotdistill train`` reads."""

    data: str = field(
        default="", metadata={"help": "rationales.jsonl (kept samples) or examples JSONL with rationales"}
    )
    unlabelled: str | None = field(default=None, metadata={"help": "JSONL of unlabelled target-domain questions"})
    student: StudentConfig = field(default_factory=StudentConfig, metadata={"help": "the student to train"})
    method: str = field(default="sft", metadata={"help": "registered method name"})
    method_args: dict[str, Any] = field(default_factory=dict, metadata={"help": "the method's own config"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "shared training settings"})
    output: str = field(default="runs/train", metadata={"help": "output directory"})

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data must name a rationales or examples JSONL file")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a student on rationales and save the checkpoint",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="YAML recipe")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=1e-4 student.finetune=lora")
    parser.add_argument("--output", help="output directory (overrides the recipe's)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the output")
    parser.set_defaults(func=_train)


def load_examples(path: str | Path, *, need_rationale: bool) -> list:
    """Examples from a rationale store (kept samples) or an examples JSONL."""
    from cotdistill.distill.store import load_kept
    from cotdistill.io import iter_jsonl, read_records
    from cotdistill.tasks import Example

    first = next((obj for _, obj in iter_jsonl(path)), None)
    if isinstance(first, dict) and "example_id" in first and "kept" in first:
        examples = load_kept(path)
    else:
        examples = read_records(path, Example.from_dict)
    if need_rationale:
        missing = sum(1 for e in examples if not e.rationale)
        if missing == len(examples):
            raise DataError("no example has a rationale (generate them with `cotdistill generate`)", path=str(path))
    if not examples:
        raise DataError("no usable examples", path=str(path))
    return examples


def _train(args: argparse.Namespace) -> int:
    from cotdistill.methods import TrainData, get_method
    from cotdistill.methods.checkpoints import training_lock
    from cotdistill.models import load_student

    recipe = load_config(TrainRecipe, args.recipe, args.overrides)
    output = Path(args.output or recipe.output)
    method_cls = get_method(recipe.method)
    method_cfg = from_dict(method_cls.Config, recipe.method_args, where=args.recipe, prefix="method_args.")
    labelled = load_examples(recipe.data, need_rationale=True)
    unlabelled = load_examples(recipe.unlabelled, need_rationale=False) if recipe.unlabelled else []
    with training_lock(output):
        save_config(recipe, output / "train_config.yaml")
        corpus = [f"{e.question} {e.rationale or e.answer}" for e in labelled] + [e.question for e in unlabelled]
        student = load_student(recipe.student, corpus)
        data = TrainData(labelled, unlabelled)
        log.info(
            "training %s on %d examples (%d unlabelled) -> %s", recipe.method, len(labelled), len(unlabelled), output
        )
        method_cls().train(student, data, recipe.train, method_cfg, output, resume=args.resume)
    print(f"trained student: {output / 'final'}")
    return 0
