"""ReDis stages 3-4: SFT on rule generation + rule following, then ORPO or DPO on rule pairs (TRL).

``sft`` trains the student on ``SFTItem``s with TRL's ``SFTTrainer``; items are tokenised here
with ``Student.encode_prompt`` / ``encode_completion`` (loss on the completion only), so the
training prompt is token-for-token the generation prompt. ``align`` continues from those weights
with TRL's ``ORPOTrainer`` (``trl.experimental.orpo``; no reference model) or ``DPOTrainer``
(reference = the SFT model). A LoRA student is trained through its adapter; between stages the
adapter is merged and a fresh one added, so DPO's adapter-disabled reference is the SFT model.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cotdistill.methods.redis.pairs import PreferencePair, SFTItem
from cotdistill.methods.tracking import parse_report_to, report_to_field, run_name_field, tracking_arguments
from cotdistill.models import LoraSettings, Student
from cotdistill.models.lora import apply_lora
from cotdistill.precision import (
    PRECISION_HELP,
    Precision,
    announce,
    resolve_precision,
    trainer_flags,
    training_device,
)

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    sft_epochs: float = field(default=3.0, metadata={"help": "epochs over the SFT sets"})
    sft_lr: float = field(default=2e-4, metadata={"help": "SFT learning rate"})
    align: Literal["orpo", "dpo", "none"] = field(default="orpo", metadata={"help": "alignment on rule pairs"})
    align_epochs: float = field(default=1.0, metadata={"help": "epochs over the preference pairs"})
    align_lr: float = field(default=5e-5, metadata={"help": "alignment learning rate"})
    beta: float = field(default=0.1, metadata={"help": "ORPO lambda / DPO beta"})
    batch_size: int = field(default=8, metadata={"help": "sequences (SFT) or pairs (alignment) per step"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    max_length: int = field(default=1024, metadata={"help": "longest prompt + completion in tokens (longer: cut)"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    precision: Precision = field(default=Precision.AUTO, metadata={"help": PRECISION_HELP})
    report_to: str = report_to_field()
    run_name: str = run_name_field()

    def __post_init__(self) -> None:
        self.precision = Precision(self.precision)
        parse_report_to(self.report_to)
        for name in ("sft_epochs", "align_epochs", "sft_lr", "align_lr", "beta"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _common_args(
    student: Student, settings: TrainSettings, output_dir: Path, epochs: float, lr: float
) -> dict[str, Any]:
    """Arguments every TRL config here shares; the precision is ``settings.precision`` resolved for the student."""
    precision = resolve_precision(settings.precision, student.model, training_device(), key="train.precision")
    announce(precision, "redis training")
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": epochs,
        "learning_rate": lr,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.grad_accum,
        "max_length": settings.max_length,
        "seed": settings.seed,
        "logging_steps": 10,
        "save_strategy": "no",
        **tracking_arguments(settings.report_to, settings.run_name, suffix=f"/{output_dir.name}"),
        **trainer_flags(precision),
        "gradient_checkpointing": False,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
    }


def tokenize_sft(student: Student, items: Sequence[SFTItem], max_length: int) -> list[dict[str, list[int]]]:
    """``input_ids``/``labels`` rows: prompt tokens masked with -100, sequence cut to ``max_length``."""
    rows = []
    for item in items:
        prompt = student.encode_prompt(student.prompt(item.prompt))
        completion = student.encode_completion(item.completion)
        ids = (prompt + completion)[-max_length:]
        labels = ([-100] * len(prompt) + completion)[-max_length:]
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def _trainable(student: Student, lora: LoraSettings | None) -> None:
    """Merge a trained adapter into the weights and, for LoRA students, add a fresh adapter."""
    if student.is_peft:
        student.model = student.model.merge_and_unload()
    if lora is not None:
        student.model = apply_lora(student.model, lora)


def _finish(student: Student) -> Student:
    if student.is_peft:
        student.model = student.model.merge_and_unload()
    student.model.eval()
    return student


def sft(
    student: Student,
    items: Sequence[SFTItem],
    settings: TrainSettings,
    output_dir: str | Path,
    lora: LoraSettings | None = None,
) -> Student:
    """Supervised fine-tuning on ``items`` (LoRA adapter when ``lora`` is given); returns merged weights."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not items:
        raise ValueError("no SFT items to train on")
    _trainable(student, lora)
    dataset = Dataset.from_list(tokenize_sft(student, items, settings.max_length))
    args = SFTConfig(
        **_common_args(student, settings, Path(output_dir), settings.sft_epochs, settings.sft_lr),
        completion_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
    )
    trainer = SFTTrainer(model=student.model, args=args, train_dataset=dataset, processing_class=student.tokenizer)
    trainer.train()
    student.model = trainer.model
    return _finish(student)


def trl_prompt(student: Student, text: str) -> str:
    """``student.prompt(text)``, with the BOS token written out when ``encode_prompt`` would add it.

    TRL's preference trainers tokenise without special tokens; this keeps their prompt ids equal
    to the ids the student generates from.
    """
    prompt = student.prompt(text)
    bos = student.tokenizer.bos_token
    ids = student.encode_prompt(prompt)
    if bos and ids and ids[0] == student.tokenizer.bos_token_id and not prompt.startswith(bos):
        return bos + prompt
    return prompt


def preference_rows(student: Student, pairs: Sequence[PreferencePair], max_length: int) -> list[dict[str, str]]:
    """TRL ``prompt``/``chosen``/``rejected`` rows; pairs that do not fit in ``max_length`` tokens are dropped.

    (TRL would cut such a pair's completion, possibly to nothing, which makes the ORPO loss NaN.)
    """
    rows = []
    for p in pairs:
        prompt = len(student.encode_prompt(student.prompt(p.prompt)))
        longest = max(len(student.encode_completion(p.chosen)), len(student.encode_completion(p.rejected)))
        if prompt + longest <= max_length:
            rows.append(
                {
                    "prompt": trl_prompt(student, p.prompt),
                    "chosen": student.completion(p.chosen),
                    "rejected": student.completion(p.rejected),
                }
            )
    if len(rows) < len(pairs):
        log.warning(
            "%d of %d preference pairs are longer than max_length=%d and were dropped",
            len(pairs) - len(rows),
            len(pairs),
            max_length,
        )
    return rows


def align(
    student: Student,
    pairs: Sequence[PreferencePair],
    settings: TrainSettings,
    output_dir: str | Path,
    lora: LoraSettings | None = None,
) -> Student:
    """ORPO or DPO on ``pairs``, continuing from the student's current weights; returns merged weights."""
    from datasets import Dataset

    rows = preference_rows(student, pairs, settings.max_length) if settings.align != "none" else []
    if not rows:
        if settings.align != "none":
            log.warning("no preference pairs fit: alignment skipped")
        return student
    _trainable(student, lora)
    dataset = Dataset.from_list(rows)
    common = _common_args(student, settings, Path(output_dir), settings.align_epochs, settings.align_lr)
    if settings.align == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        args = ORPOConfig(**common, beta=settings.beta, remove_unused_columns=False)
        trainer = ORPOTrainer(model=student.model, args=args, train_dataset=dataset, processing_class=student.tokenizer)
    else:
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common, beta=settings.beta)
        reference = None if student.is_peft else copy.deepcopy(student.model).eval()
        trainer = DPOTrainer(
            model=student.model,
            ref_model=reference,
            args=args,
            train_dataset=dataset,
            processing_class=student.tokenizer,
        )
    trainer.train()
    student.model = trainer.model
    return _finish(student)
