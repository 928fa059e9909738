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
from cotdistill.methods.base import TrainConfig
from cotdistill.models.loading import StudentConfig

log = logging.getLogger(__name__)

EXAMPLE = """example recipe:
  data: out/rationales.jsonl      # or an examples JSONL with rationales
  unlabelled: null                # optional JSONL of target-domain questions (PRADA)
  suite: runs/suite               # the suite evaluated on: its tasks' answer instructions
  student: {model: tiny}          # or smollm2-135m-instruct with finetune: lora
  method: sft
  method_args: {multitask: false}
  train: {epochs: 3, lr: 3.0e-3, batch_size: 16, report_to: none}   # or tensorboard, wandb, ...
  output: runs/train
"""


@dataclass
class TrainRecipe:
    """What ``cotdistill train`` reads."""

    data: str = field(
        default="", metadata={"help": "rationales.jsonl (kept samples) or examples JSONL with rationales"}
    )
    unlabelled: str | None = field(default=None, metadata={"help": "JSONL of unlabelled target-domain questions"})
    suite: str | None = field(
        default=None,
        metadata={
            "help": "suite directory whose tasks give each domain's answer instruction and family, as "
            "`cotdistill eval` uses them (default: the registered task named like the domain)"
        },
    )
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


def _train(args: argparse.Namespace) -> int:
    from cotdistill import api
    from cotdistill.methods import get_method
    from cotdistill.methods.checkpoints import training_lock

    recipe = load_config(TrainRecipe, args.recipe, args.overrides)
    output = Path(args.output or recipe.output)
    method_cfg = from_dict(
        get_method(recipe.method).Config, recipe.method_args, where=args.recipe, prefix="method_args."
    )
    with training_lock(output):
        save_config(recipe, output / "train_config.yaml")
        log.info("training %s on %s -> %s", recipe.method, recipe.data, output)
        api.train(
            recipe.data,
            output,
            method=recipe.method,
            method_config=method_cfg,
            student=recipe.student,
            train=recipe.train,
            unlabelled=recipe.unlabelled or (),
            suite=recipe.suite,
            resume=args.resume,
        )
    print(f"trained student: {output / 'final'}")
    return 0
