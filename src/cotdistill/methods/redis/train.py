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

from cotdistill.methods.base import TrainConfig
from cotdistill.methods.checkpoints import TRAINER_FILES, last_complete_checkpoint
from cotdistill.methods.data import make_row
from cotdistill.methods.redis.pairs import PreferencePair, SFTItem
from cotdistill.methods.tracking import report_to_field, run_name_field
from cotdistill.methods.training_args import build_training_args, training_precision
from cotdistill.methods.trl_fused_head import compact_fused_head
from cotdistill.mixed_precision import make_trainer
from cotdistill.models import Student, StudentLoRAConfig
from cotdistill.models.lora import apply_lora
from cotdistill.precision import PRECISION_HELP, Precision, ResolvedPrecision, master_weights_field

log = logging.getLogger(__name__)

AlignLoss = Literal["orpo", "dpo"]
Stage = Literal["sft", "align"]
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


@dataclass
class ReDisTrainConfig:
    """Stages 3-4 (``train:`` of a redis recipe): per-stage epochs and learning rate, the rest shared."""

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
    master_weights: bool = master_weights_field()
    group_by_length: bool = field(
        default=True, metadata={"help": "SFT batches rows of similar length (transformers' LengthGroupedSampler)"}
    )
    save_steps: int = field(
        default=0, metadata={"help": "checkpoint every N steps of each stage (0: none); a killed stage resumes there"}
    )
    save_total_limit: int = field(default=2, metadata={"help": "step checkpoints kept per stage"})
    report_to: str = report_to_field()
    run_name: str = run_name_field()

    def __post_init__(self) -> None:
        self.precision = Precision(self.precision)
        for name in ("sft_epochs", "align_epochs", "sft_lr", "align_lr", "beta"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        self.stage("sft")  # TrainConfig checks the shared fields

    def stage(self, stage: Stage) -> TrainConfig:
        """The shared train settings of ``stage`` (``sft`` or ``align``): its epochs and learning rate."""
        epochs, lr = (self.sft_epochs, self.sft_lr) if stage == "sft" else (self.align_epochs, self.align_lr)
        return TrainConfig(
            epochs=epochs,
            lr=lr,
            warmup_ratio=self.warmup_ratio,
            batch_size=self.batch_size,
            grad_accum=self.grad_accum,
            max_length=self.max_length,
            seed=self.seed,
            precision=self.precision,
            master_weights=self.master_weights,
            group_by_length=self.group_by_length,
            save_steps=self.save_steps,
            save_total_limit=self.save_total_limit,
            report_to=self.report_to,
            run_name=self.run_name,
        )


def training_args(
    student: Student, config: ReDisTrainConfig, stage: Stage, output_dir: Path, args_cls: type, **extras: Any
) -> tuple[Any, ResolvedPrecision]:
    """TRL ``args_cls`` of ``stage`` from ``build_training_args`` and the precision it trains in (for
    ``make_trainer``); the run name gets ``/<output_dir name>``."""
    train = config.stage(stage)
    precision = training_precision(train, student.model)
    args = build_training_args(
        train,
        output_dir,
        args_cls=args_cls,
        purpose="redis training",
        scheduler=config.scheduler,
        run_suffix=f"/{output_dir.name}",
        precision=precision,
        max_length=train.max_length,
        **extras,
    )
    return args, precision


def tokenize_sft(student: Student, items: Sequence[SFTItem], max_length: int) -> list[dict[str, list[int]]]:
    """``input_ids``/``labels`` rows: prompt tokens masked with -100; a longer row keeps its last ``max_length``."""
    rows = []
    for item in items:
        row = make_row(
            student, student.prompt(item.prompt), item.completion, max_length=max_length, truncation_side="left"
        )
        rows.append({"input_ids": row["input_ids"], "labels": row["labels"]})
    return rows


def _trainable(student: Student, lora: StudentLoRAConfig | None) -> None:
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
    settings: ReDisTrainConfig,
    output_dir: str | Path,
    lora: StudentLoRAConfig | None = None,
    *,
    resume: bool = False,
) -> Student:
    """Supervised fine-tuning on ``items`` (LoRA adapter when ``lora`` is given); returns merged weights.

    ``resume``: continue from the newest complete checkpoint in ``output_dir`` (``settings.save_steps``),
    which must come from the same student, items and settings (the pipeline's stage records ensure it)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not items:
        raise ValueError("no SFT items to train on")
    _trainable(student, lora)
    dataset = Dataset.from_list(tokenize_sft(student, items, settings.max_length))
    args, precision = training_args(
        student,
        settings,
        "sft",
        Path(output_dir),
        SFTConfig,
        completion_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
    )
    trainer = make_trainer(
        SFTTrainer, precision, model=student.model, args=args, train_dataset=dataset, processing_class=student.tokenizer
    )
    _train(trainer, Path(output_dir), resume)
    student.model = trainer.model
    return _finish(student)


def _train(trainer: Any, output_dir: Path, resume: bool) -> None:
    """``trainer.train()``, from the newest complete checkpoint in ``output_dir`` when ``resume``; TRL's
    fused LM head scores only the completion positions (``compact_fused_head``)."""
    last = last_complete_checkpoint(output_dir, TRAINER_FILES) if resume else None
    if last:
        log.info("resuming %s", last)
    with compact_fused_head():
        trainer.train(resume_from_checkpoint=last)


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
    student: Student, rows: list[dict[str, str]], settings: ReDisTrainConfig, loss: AlignLoss, output_dir: Path
) -> Any:
    """The TRL trainer of ``loss`` over ``rows`` (not trained yet); DPO's reference is the current model."""
    from datasets import Dataset

    dataset = Dataset.from_list(rows)
    if loss == "orpo":
        from trl.experimental.orpo import ORPOConfig

        args, precision = training_args(
            student, settings, "align", output_dir, ORPOConfig, beta=settings.beta, remove_unused_columns=False
        )
        return make_trainer(
            response_orpo_trainer_class(),
            precision,
            model=student.model,
            args=args,
            train_dataset=dataset,
            processing_class=student.tokenizer,
        )
    from trl import DPOConfig, DPOTrainer

    args, precision = training_args(student, settings, "align", output_dir, DPOConfig, beta=settings.beta)
    reference = None if student.is_peft else copy.deepcopy(student.model).eval()
    return make_trainer(
        DPOTrainer,
        precision,
        model=student.model,
        ref_model=reference,
        args=args,
        train_dataset=dataset,
        processing_class=student.tokenizer,
    )


def align(
    student: Student,
    pairs: Sequence[PreferencePair],
    settings: ReDisTrainConfig,
    output_dir: str | Path,
    lora: StudentLoRAConfig | None = None,
    loss: AlignLoss = "orpo",
    *,
    resume: bool = False,
) -> Student:
    """ORPO or DPO (``loss``) on ``pairs``, continuing from the student's current weights; returns merged
    weights. ``resume`` as for ``sft``."""
    rows = preference_rows(student, pairs, settings.max_length, loss)
    if not rows:
        log.warning("no preference pairs fit: alignment skipped")
        return student
    _trainable(student, lora)
    trainer = preference_trainer(student, rows, settings, loss, Path(output_dir))
    _train(trainer, Path(output_dir), resume)
    student.model = trainer.model
    return _finish(student)
