"""``method: sft``: supervised CoT distillation (Fine-tune-CoT; optional distilling step-by-step).

The student learns to produce the teacher's rationale (ending in "The answer is X.") after
``student.prompt(question, task instruction)``; the loss covers the completion and EOS only.
With ``multitask`` every example also gives a label row (a distinct instruction asking for the
answer sentence alone); rationale tokens are weighted ``alpha`` and label tokens ``1 - alpha``.

Built on ``transformers.Trainer`` (checkpoints, resume, gradient accumulation, ``accelerate
launch``): the module trained is ``methods.student_module.StudentModule``, the trainer
``methods.student_trainer.StudentTrainer``. ``SFT.train`` locks the output directory and resumes
from the newest complete checkpoint, on the same data and tokenizer only (``methods.checkpoints``).

Extending (PRADA, KD): subclass ``SFT`` (``build_rows``, ``extra_modules``, ``trainer_class``)
and ``StudentTrainer``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from cotdistill.answers import answer_sentence
from cotdistill.errors import CotDistillError
from cotdistill.io import atomic_write_json, replace_directory
from cotdistill.methods.base import TrainConfig, TrainData, register_method
from cotdistill.methods.checkpoints import (
    STAGING_DIR,
    check_resume_inputs,
    clear_staging,
    inputs_fingerprint,
    last_complete_checkpoint,
    training_lock,
)
from cotdistill.methods.data import IGNORE_INDEX, count_truncated, make_row
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models.student import STUDENT_FILE, Student

log = logging.getLogger(__name__)

FINAL_DIR = "final"
SUMMARY_FILE = "train_summary.json"


@dataclass
class SFTMethodConfig:
    """Knobs of ``method: sft``."""

    use_instruction: bool = field(
        default=True, metadata={"help": "append the task's answer instruction to prompts (as evaluation does)"}
    )
    multitask: bool = field(default=False, metadata={"help": "distilling step-by-step: add a label-only task"})
    alpha: float = field(default=0.5, metadata={"help": "multitask: weight of rationale tokens (labels get 1 - alpha)"})
    label_instruction: str = field(
        default="Give only the final answer sentence.",
        metadata={"help": "multitask: the instruction that asks for the answer alone"},
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.multitask and not self.label_instruction.strip():
            raise ValueError("label_instruction must not be empty in multitask mode")


def rationale_target(example: Any) -> str:
    """What the student learns to write: the rationale, or just the answer sentence without one."""
    return example.rationale or answer_sentence(example.answer)


@register_method("sft")
class SFT:
    """Completion-only supervised fine-tuning on teacher rationales."""

    Config = SFTMethodConfig
    trainer_class: ClassVar[type[StudentTrainer]] = StudentTrainer

    def build_rows(self, student: Student, data: TrainData, config: SFTMethodConfig, train: TrainConfig) -> list[dict]:
        """Tokenised rows from the labelled examples (two per example in multitask mode)."""
        rows = []
        for example in data.labelled:
            instruction = data.instruction(example.domain) if config.use_instruction else None
            prompt = student.prompt(example.question, instruction)
            if not config.multitask:
                rows.append(make_row(student, prompt, rationale_target(example), max_length=train.max_length))
                continue
            if config.alpha > 0:
                target = rationale_target(example)
                rows.append(make_row(student, prompt, target, max_length=train.max_length, weight=config.alpha))
            if config.alpha < 1:
                label_prompt = student.prompt(example.question, config.label_instruction)
                label = answer_sentence(example.answer)
                rows.append(
                    make_row(student, label_prompt, label, max_length=train.max_length, weight=1 - config.alpha)
                )
        return rows

    def extra_modules(self, student: Student, data: TrainData, config: Any) -> dict[str, nn.Module]:
        """Modules trained alongside the student (none for SFT)."""
        return {}

    def train(
        self,
        student: Student,
        data: TrainData,
        train: TrainConfig,
        config: SFTMethodConfig,
        output_dir: str | Path,
        *,
        resume: bool = False,
    ) -> Student:
        """Train ``student`` in place; saves ``output_dir/final`` and returns the trained student."""
        with training_lock(output_dir) as output_dir:
            return self._train(student, data, train, config, output_dir, resume=resume)

    def _train(
        self,
        student: Student,
        data: TrainData,
        train: TrainConfig,
        config: SFTMethodConfig,
        output_dir: Path,
        *,
        resume: bool,
    ) -> Student:
        rows = self.build_rows(student, data, config, train)
        if not rows:
            raise CotDistillError("no training rows: the training data has no labelled examples")
        check_resume_inputs(output_dir, inputs_fingerprint(rows, student.tokenizer), resuming=resume)
        final = output_dir / FINAL_DIR
        if resume and (final / STUDENT_FILE).exists():
            log.info("%s already holds a finished run; loading it", final)
            return Student.load(final)
        truncated = count_truncated(rows, train.max_length)
        if truncated:
            log.warning("%d of %d rows were cut to max_length=%d tokens", truncated, len(rows), train.max_length)
        trainer = self.trainer_class(
            student,
            rows,
            train,
            output_dir,
            method_config=config,
            extra_modules=self.extra_modules(student, data, config),
        )
        if trainer.args.should_save:
            clear_staging(output_dir)
        checkpoint = last_complete_checkpoint(output_dir) if resume else None
        if checkpoint:
            log.info("resuming from %s", checkpoint)
        result = trainer.train(resume_from_checkpoint=checkpoint)
        if trainer.args.should_save:
            staging = output_dir / STAGING_DIR / FINAL_DIR
            trainer.save_model(str(staging))
            replace_directory(staging, final)
            tokens = sum(sum(label != IGNORE_INDEX for label in r["labels"]) for r in rows)
            summary = {"rows": len(rows), "completion_tokens_per_epoch": tokens, "steps": result.global_step}
            atomic_write_json(
                output_dir / SUMMARY_FILE, {**summary, **result.metrics, "log": trainer.state.log_history}
            )
        trainer.accelerator.wait_for_everyone()
        return student
