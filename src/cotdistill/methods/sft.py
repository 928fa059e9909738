"""``method: sft``: supervised CoT distillation (Fine-tune-CoT; optional distilling step-by-step).

The student learns to produce the teacher's rationale (ending in "The answer is X.") after
``student.prompt(question, task instruction)``; the loss covers the completion and EOS only.
With ``multitask`` every example also gives a label row (a distinct instruction asking for the
answer sentence alone); rationale tokens are weighted ``alpha`` and label tokens ``1 - alpha``.

Built on ``transformers.Trainer`` (checkpoints, resume, gradient accumulation, ``accelerate
launch``). What this module adds:

* ``StudentModule``: the ``nn.Module`` the Trainer optimises. Its forward goes through
  ``student.embed_inputs`` (soft prompt included) and the decoder, and applies the LM head only
  at labelled positions (no logits for prompt or padding tokens).
* ``SFTTrainer``: sums token losses and divides by the completion tokens of the whole
  accumulated batch (across processes), so gradient accumulation changes nothing; rows are
  batched by length with a seeded order (resume sees the same batches); checkpoints are
  ``Student.save`` directories plus the Trainer state, written whole or not at all; a NaN/inf
  loss stops the run. ``SFT.train`` locks the output directory and resumes from the newest
  complete checkpoint, on the same data and tokenizer only (``methods.checkpoints``).

Extending (PRADA, KD): subclass ``SFT`` (``build_rows``, ``extra_modules``, ``trainer_class``)
and ``SFTTrainer`` (``auxiliary_loss``, ``token_loss_sum``, ``needs_hidden_states``). Rows may
carry ``domain_ids`` and may have no labelled token at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.utils import ModelOutput

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
    publish_checkpoint,
    training_lock,
)
from cotdistill.methods.data import IGNORE_INDEX, Collator, LengthGroupedSampler, count_truncated, make_row
from cotdistill.methods.tracking import tracking_arguments
from cotdistill.mixed_precision import MasterWeightsMixin
from cotdistill.models.student import STUDENT_FILE, Student
from cotdistill.nn.losses import linear_cross_entropy
from cotdistill.precision import (
    ResolvedPrecision,
    announce,
    resolve_precision,
    trainer_flags,
    training_device,
    with_master_weights,
)

log = logging.getLogger(__name__)

FINAL_DIR = "final"
EXTRA_FILE = "extra_modules.safetensors"
SUMMARY_FILE = "train_summary.json"
CHUNKED_LOSS_MIN_LOGITS = 2**26  # 256 MiB of fp32 logits


class TrainingDivergedError(CotDistillError):
    """The loss became NaN or infinite; the run stopped without saving the bad weights."""


@dataclass
class SFTConfig:
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


@dataclass
class SFTOutput(ModelOutput):
    """``loss_sum``: weighted token cross-entropy summed over labelled tokens (scalar);
    ``num_tokens``: labelled tokens in the batch; ``last_hidden_state`` (B, P + T, H) and
    ``hidden_states`` (when requested) include the ``prefix_length`` soft-prompt positions."""

    loss_sum: torch.Tensor | None = None
    num_tokens: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    prefix_length: int | None = None


def completion_loss_sum(
    head: nn.Module,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    token_weight: torch.Tensor | None,
    softcap: float | None,
) -> torch.Tensor:
    """Weighted token cross-entropy of ``head(hidden)`` (N, H) against ``targets`` (N,), summed (fp32).

    When the fp32 logits would exceed ``CHUNKED_LOSS_MIN_LOGITS`` values and the head is a plain
    bias-free ``nn.Linear``, the loss goes through ``nn.losses.linear_cross_entropy`` (chunked, no
    (N, V) fp32 logits kept: a large-vocabulary model such as Gemma 3 saves about 1 GB per
    micro-batch); otherwise (smaller batches, where the plain path measured about 10% faster on
    a CPU, or a LoRA-wrapped or sharded head) the head is called and ``F.cross_entropy`` runs on
    its fp32 logits.
    """
    weight = getattr(head, "weight", None)
    plain = type(head) is nn.Linear and head.bias is None and type(weight) is nn.Parameter
    large = plain and hidden.shape[0] * weight.shape[0] >= CHUNKED_LOSS_MIN_LOGITS
    if large and weight.dim() == 2 and not hasattr(weight, "ds_id"):
        return linear_cross_entropy(hidden, weight, targets, token_weight, softcap=softcap)
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    token_loss = F.cross_entropy(logits, targets, reduction="none")
    return (token_loss if token_weight is None else token_loss * token_weight).sum()


class StudentModule(nn.Module):
    """What the Trainer optimises: the student's model, its soft prompt and any extra modules."""

    accepts_loss_kwargs = True  # the Trainer then counts completion tokens across micro-batches

    def __init__(self, student: Student, extra_modules: dict[str, nn.Module] | None = None):
        super().__init__()
        self.model = student.model
        self.soft_prompt = student.soft_prompt
        self.extra = nn.ModuleDict(extra_modules or {})
        # False: rows without a labelled token (unlabelled target questions) send no gradient into
        # the input embeddings (token embeddings, soft prompt); their hidden states still train the
        # layers above. Set by methods whose auxiliary loss is the only gradient those rows have.
        self.unlabelled_rows_train_embeddings = True
        object.__setattr__(self, "student", student)  # a plain reference, not a submodule

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        weight: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> SFTOutput:
        embeds, mask = self.student.embed_inputs(input_ids, attention_mask, domain_ids)
        if not self.unlabelled_rows_train_embeddings and embeds.requires_grad:
            labelled = (labels != IGNORE_INDEX).any(dim=1)[:, None, None]
            embeds = torch.where(labelled, embeds, embeds.detach())
        decoder_out = self.model.get_decoder()(
            inputs_embeds=embeds, attention_mask=mask, use_cache=False, output_hidden_states=output_hidden_states
        )
        prefix = embeds.shape[1] - input_ids.shape[1]
        hidden = decoder_out.last_hidden_state[:, prefix:-1]
        targets = labels[:, 1:]
        selected = targets != IGNORE_INDEX
        token_weight = weight[:, None].expand_as(targets)[selected] if weight is not None else None
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        loss_sum = completion_loss_sum(
            self.model.get_output_embeddings(), hidden[selected], targets[selected], token_weight, cap
        )
        return SFTOutput(
            loss_sum=loss_sum,
            num_tokens=selected.sum(),
            last_hidden_state=decoder_out.last_hidden_state,
            hidden_states=decoder_out.hidden_states if output_hidden_states else None,
            prefix_length=prefix,
        )


def training_arguments(train: TrainConfig, output_dir: str | Path, precision: ResolvedPrecision) -> TrainingArguments:
    """``TrainingArguments`` for ``train``; ``precision`` is ``train.precision`` resolved for the model."""
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=train.max_steps,
        num_train_epochs=train.epochs,
        learning_rate=train.lr,
        lr_scheduler_type="linear",
        warmup_steps=train.warmup_ratio,
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        per_device_train_batch_size=train.batch_size,
        gradient_accumulation_steps=train.grad_accum,
        average_tokens_across_devices=True,
        logging_steps=train.logging_steps,
        save_strategy="steps" if train.save_steps else "no",
        save_steps=train.save_steps or 500,
        save_total_limit=train.save_total_limit,
        seed=train.seed,
        **trainer_flags(precision),
        use_cpu=not torch.accelerator.is_available(),  # multi-process CPU runs then use gloo DDP
        **tracking_arguments(train.report_to, train.run_name),
        remove_unused_columns=False,
        disable_tqdm=not train.progress,
        dataloader_num_workers=0,
    )


class SFTTrainer(MasterWeightsMixin, Trainer):
    """``transformers.Trainer`` for a ``StudentModule`` (see the module docstring)."""

    needs_hidden_states: ClassVar[bool] = False

    def __init__(
        self,
        student: Student,
        rows: list[dict[str, Any]],
        train: TrainConfig,
        output_dir: str | Path,
        *,
        method_config: Any = None,
        extra_modules: dict[str, nn.Module] | None = None,
    ):
        self.student = student
        self.train_config = train
        self.method_config = method_config
        self._step_logs: dict[str, list[float]] = defaultdict(list)
        precision = resolve_precision(train.precision, student.model, training_device(), key="train.precision")
        precision = with_master_weights(precision, train.master_weights)
        announce(precision, "training")
        super().__init__(
            model=StudentModule(student, extra_modules),
            args=training_arguments(train, output_dir, precision),
            train_dataset=rows,
            data_collator=Collator(student.tokenizer.pad_token_id),
        )
        self.loss_is_scaled_for_ga = True
        if precision.master_weights:
            self.hold_in_bf16(student.model)

    # ------------------------------------------------------------------ extension hook

    def auxiliary_loss(self, outputs: SFTOutput, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, dict]:
        """Extra loss for this micro-batch (a mean, added as is) and values to log; SFT has none."""
        return None, {}

    def token_loss_sum(self, outputs: SFTOutput, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """This micro-batch's loss summed over its completion tokens (then divided by the completion
        tokens of the whole accumulated batch) and values to log; SFT: the cross-entropy sum."""
        return outputs.loss_sum, {}

    # ------------------------------------------------------------------ loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs, output_hidden_states=self.needs_hidden_states)
        loss_sum, logs = self.token_loss_sum(outputs, inputs)
        if num_items_in_batch is None:  # outside the training loop: a plain per-batch mean
            loss = loss_sum / outputs.num_tokens.clamp(min=1)
        else:
            denominator = torch.as_tensor(num_items_in_batch, device=loss_sum.device).clamp(min=1)
            loss = loss_sum / denominator * self.accelerator.num_processes  # DDP averages gradients
        self._step_logs["sft_loss"].append(float(outputs.loss_sum.detach()) / max(int(outputs.num_tokens), 1))
        aux, aux_logs = self.auxiliary_loss(outputs, inputs)
        logs = {**logs, **aux_logs}
        if aux is not None:
            loss = loss + aux / self.current_gradient_accumulation_steps
        for key, value in logs.items():
            self._step_logs[key].append(float(value))
        if not torch.isfinite(loss.detach()):
            last = last_complete_checkpoint(self.args.output_dir)
            raise TrainingDivergedError(
                f"training stopped: the loss is {float(loss.detach())} at step {self.state.global_step + 1}; "
                f"last good checkpoint: {last or 'none saved yet'} (lower the learning rate or check the data)"
            )
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for key, values in self._step_logs.items():
            if values:
                logs[key] = sum(values) / len(values)
        self._step_logs.clear()
        super().log(logs, start_time)

    # ------------------------------------------------------------------ data order

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return LengthGroupedSampler(
            [len(r["input_ids"]) for r in dataset],
            self.args.per_device_train_batch_size,
            self.args.seed,
            group=self.train_config.group_by_length,
        )

    # ------------------------------------------------------------------ checkpoints

    def _module(self) -> StudentModule:
        return self.accelerator.unwrap_model(self.model)

    _staging: Path | None = None

    def _get_output_dir(self, trial) -> str:
        return str(self._staging) if self._staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Write ``checkpoint-N`` in the staging directory, then rename it into place whole."""
        run_dir = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        self._staging = run_dir / STAGING_DIR
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()  # every process wrote its RNG state
        if self.args.should_save:
            publish_checkpoint(run_dir, name, self.args.save_total_limit)
        self.accelerator.wait_for_everyone()

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        from safetensors.torch import save_file

        output_dir = Path(output_dir or self.args.output_dir)
        self.student.save(output_dir)
        extra = self._module().extra
        if len(extra):
            save_file({k: v.detach().contiguous() for k, v in extra.state_dict().items()}, str(output_dir / EXTRA_FILE))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        from safetensors.torch import load_file

        module = self._module()
        saved = Student.load(resume_from_checkpoint)
        try:
            module.model.load_state_dict(saved.model.state_dict())
            if module.soft_prompt is not None and saved.soft_prompt is not None:
                module.soft_prompt.load_state_dict(saved.soft_prompt.state_dict())
            extra_file = Path(resume_from_checkpoint) / EXTRA_FILE
            if len(module.extra) and extra_file.exists():
                module.extra.load_state_dict(load_file(str(extra_file)))
        except RuntimeError as exc:
            detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
            raise CotDistillError(
                f"{resume_from_checkpoint}: the checkpoint does not fit the configured student ({detail}); "
                "resume with the student settings it was trained with, or train into a new output directory"
            ) from None


@register_method("sft")
class SFT:
    """Completion-only supervised fine-tuning on teacher rationales."""

    Config = SFTConfig
    trainer_class: ClassVar[type[SFTTrainer]] = SFTTrainer

    def build_rows(self, student: Student, data: TrainData, config: SFTConfig, train: TrainConfig) -> list[dict]:
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
        config: SFTConfig,
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
        config: SFTConfig,
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
