"""The method registry and what every method's ``train`` receives.

A method is a class registered with ``@register_method("name")`` that has a ``Config``
dataclass (its own knobs, validated from the recipe) and
``train(student, data, train_cfg, method_cfg, output_dir, *, resume=False) -> Student``.
``TrainConfig`` holds the knobs every trainer shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cotdistill.methods.tracking import parse_report_to, report_to_field, run_name_field
from cotdistill.precision import PRECISION_HELP, Precision, legacy_precision, master_weights_field
from cotdistill.registry import Registry
from cotdistill.tasks.base import Example


@dataclass
class TrainConfig:
    """Optimisation settings shared by every method."""

    max_steps: int = field(default=-1, metadata={"help": "optimizer steps; -1 trains for `epochs` epochs"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training rows (when max_steps is -1)"})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate (AdamW, linear decay)"})
    batch_size: int = field(default=16, metadata={"help": "rows per micro-batch per process"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "fraction of steps with linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 disables)"})
    max_length: int = field(default=512, metadata={"help": "longest row in tokens; longer rows are cut"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation-independent randomness (order, dropout)"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint every N steps (0: only at the end)"})
    save_total_limit: int = field(default=2, metadata={"help": "how many step checkpoints to keep"})
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})
    precision: Precision = field(default=Precision.AUTO, metadata={"help": PRECISION_HELP})
    bf16: bool | None = field(default=None, metadata={"help": "deprecated: write precision: bf16 (or fp32)"})
    master_weights: bool = master_weights_field()
    group_by_length: bool = field(default=True, metadata={"help": "batch rows of similar length (less padding)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    report_to: str = report_to_field()
    run_name: str = run_name_field()

    def __post_init__(self) -> None:
        self.precision = legacy_precision("bf16", self.bf16, self.precision)
        self.bf16 = None
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 or >= 1, got {self.max_steps}")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("batch_size", "grad_accum", "max_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.save_steps < 0 or self.save_total_limit < 1:
            raise ValueError(
                f"save_steps must be >= 0 and save_total_limit >= 1, got {self.save_steps}, {self.save_total_limit}"
            )
        parse_report_to(self.report_to)


@dataclass
class TrainData:
    """Training input of a method.

    ``labelled``: examples with rationales (source domains); ``unlabelled``: target-domain
    questions (answers and rationales unused); ``instructions``: the answer instruction of each
    domain (``task.answer_instruction``; defaults to the registered task named like the domain);
    ``families``: the task family of each domain (``task.family``; same default).
    """

    labelled: list[Example]
    unlabelled: list[Example] = field(default_factory=list)
    instructions: dict[str, str] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)

    def instruction(self, domain: str) -> str | None:
        from cotdistill.tasks import TASKS

        return self.instructions.get(domain) or (TASKS.get(domain)().answer_instruction if domain in TASKS else None)

    def family(self, domain: str) -> str | None:
        from cotdistill.tasks import TASKS

        if domain in self.families:
            return self.families[domain]
        return str(TASKS.get(domain).family) if domain in TASKS else None


class Method(Protocol):
    Config: type

    def train(
        self,
        student: Any,
        data: TrainData,
        train: TrainConfig,
        config: Any,
        output_dir: str | Path,
        *,
        resume: bool = False,
    ) -> Any: ...


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str):
    """Class decorator registering a method under ``name``."""
    return METHODS.register(name)


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)
