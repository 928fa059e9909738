"""ReDis stages 3-4: SFT on rule generation + rule following, then ORPO or DPO on rule pairs (TRL).

``sft`` trains the student on ``SFTItem``s with TRL's ``SFTTrainer``; items are tokenised here
with ``Student.encode_prompt`` / ``encode_completion`` (loss on the completion only), so the
training prompt is token-for-token the generation prompt. ``align`` continues from those weights
with ORPO (TRL's ``trl.experimental.orpo``; no reference model) or DPO (TRL's ``DPOTrainer``;
reference = the SFT model). A LoRA student is trained through its adapter; between stages the
adapter is merged and a fresh one added, so DPO's adapter-disabled reference is the SFT model.

Two departures from TRL's defaults, both to match the paper's trainer (LLaMA-Factory):

* ORPO's NLL term is the chosen *response's* average negative log-likelihood (``-logps/chosen``),
  not TRL's NLL over prompt + response (the prompt is most of each sequence here, so TRL's term
  mostly trains the model to predict the seen examples);
* each trainer gets the prompt text whose tokenisation *by that trainer* equals the student's
  ``encode_prompt`` (one BOS, never two: DPO tokenises with special tokens, ORPO without and then
  adds a missing BOS).
"""

from __future__ import annotations

import copy
import functools
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

AlignLoss = Literal["orpo", "dpo"]
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


@dataclass
class TrainSettings:
    sft_epochs: float = field(default=3.0, metadata={"help": "epochs over the SFT sets"})
    sft_lr: float = field(default=2e-4, metadata={"help": "SFT learning rate"})
    align_epochs: float = field(default=1.0, metadata={"help": "epochs over the preference pairs"})
    align_lr: float = field(default=5e-5, metadata={"help": "alignment learning rate"})
    beta: float = field(default=0.1, metadata={"help": "ORPO lambda / DPO beta"})
    scheduler: str = field(
        default="linear", metadata={"help": "learning-rate schedule of both stages (transformers name: cosine, ...)"}
    )
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of each stage's steps with linear warm-up"})
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
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")


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
        "lr_scheduler_type": settings.scheduler,
        "warmup_steps": settings.warmup_ratio,  # a float in [0, 1) is a share of the steps
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


def trl_prompt(student: Student, text: str, *, add_special_tokens: bool) -> str:
    """The text of ``student.prompt(text)`` that a TRL trainer tokenises to the student's prompt ids.

    ``add_special_tokens`` is how the trainer calls the tokenizer (DPO: True; ORPO: False, then it
    prepends a missing BOS). The BOS is written out or left out so the trainer's ids equal
    ``encode_prompt``, the ids the student generates from (one BOS, never two).
    """
    prompt = student.prompt(text)
    tokenizer = student.tokenizer
    target = student.encode_prompt(prompt)
    bos = tokenizer.bos_token or ""
    candidates = [prompt, bos + prompt, prompt.removeprefix(bos)] if bos else [prompt]
    for candidate in candidates:
        if _trainer_prompt_ids(tokenizer, candidate, add_special_tokens) == target:
            return candidate
    log.warning("no prompt text tokenises to the student's prompt ids; TRL's prompt may differ at the BOS")
    return prompt


def _trainer_prompt_ids(tokenizer: Any, text: str, add_special_tokens: bool) -> list[int]:
    ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    if not add_special_tokens and tokenizer.bos_token_id is not None and ids[:1] != [tokenizer.bos_token_id]:
        ids = [tokenizer.bos_token_id, *ids]  # what TRL's ORPO does to a prompt without BOS
    return ids


def preference_rows(
    student: Student, pairs: Sequence[PreferencePair], max_length: int, loss: AlignLoss = "orpo"
) -> list[dict[str, str]]:
    """TRL ``prompt``/``chosen``/``rejected`` rows for ``loss``; pairs over ``max_length`` tokens are dropped.

    (TRL would cut such a pair's completion, possibly to nothing, which makes the ORPO loss NaN.)
    """
    rows = []
    prompts: dict[str, str] = {}
    for p in pairs:
        prompt = len(student.encode_prompt(student.prompt(p.prompt)))
        longest = max(len(student.encode_completion(p.chosen)), len(student.encode_completion(p.rejected)))
        if prompt + longest <= max_length:
            if p.prompt not in prompts:
                prompts[p.prompt] = trl_prompt(student, p.prompt, add_special_tokens=loss == "dpo")
            rows.append(
                {
                    "prompt": prompts[p.prompt],
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


@functools.cache
def response_orpo_trainer_class() -> type:
    """TRL's ``ORPOTrainer`` with the NLL term over the chosen response only (``-logps/chosen``).

    ``logps/chosen`` is the chosen response's average token log-prob (prompt masked, EOS
    included), so the logged ``nll_loss`` is the chosen response's NLL per token, averaged over
    the batch, as in the paper's trainer.
    """
    from trl.experimental.orpo import ORPOTrainer

    class ResponseNLLORPOTrainer(ORPOTrainer):
        def concatenated_forward(self, model: Any, batch: dict[str, Any]) -> tuple[Any, ...]:
            chosen_logps, *rest = super().concatenated_forward(model, batch)
            rest[3] = -chosen_logps.mean()  # replaces TRL's prompt + response NLL
            return (chosen_logps, *rest)

    return ResponseNLLORPOTrainer


def preference_trainer(
    student: Student, rows: list[dict[str, str]], settings: TrainSettings, loss: AlignLoss, output_dir: Path
) -> Any:
    """The TRL trainer of ``loss`` over ``rows`` (not trained yet); DPO's reference is the current model."""
    from datasets import Dataset

    dataset = Dataset.from_list(rows)
    common = _common_args(student, settings, output_dir, settings.align_epochs, settings.align_lr)
    if loss == "orpo":
        from trl.experimental.orpo import ORPOConfig

        args = ORPOConfig(**common, beta=settings.beta, remove_unused_columns=False)
        return response_orpo_trainer_class()(
            model=student.model, args=args, train_dataset=dataset, processing_class=student.tokenizer
        )
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(**common, beta=settings.beta)
    reference = None if student.is_peft else copy.deepcopy(student.model).eval()
    return DPOTrainer(
        model=student.model, ref_model=reference, args=args, train_dataset=dataset, processing_class=student.tokenizer
    )


def align(
    student: Student,
    pairs: Sequence[PreferencePair],
    settings: TrainSettings,
    output_dir: str | Path,
    lora: LoraSettings | None = None,
    loss: AlignLoss = "orpo",
) -> Student:
    """ORPO or DPO (``loss``) on ``pairs``, continuing from the student's current weights; returns merged weights."""
    rows = preference_rows(student, pairs, settings.max_length, loss)
    if not rows:
        log.warning("no preference pairs fit: alignment skipped")
        return student
    _trainable(student, lora)
    trainer = preference_trainer(student, rows, settings, loss, Path(output_dir))
    trainer.train()
    student.model = trainer.model
    return _finish(student)
