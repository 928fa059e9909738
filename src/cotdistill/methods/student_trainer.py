"""``StudentTrainer``: the ``transformers.Trainer`` behind ``method: sft`` and the methods built on it.

It trains a ``StudentModule`` on tokenised rows (``methods.data``): token losses are summed and
divided by the completion tokens of the whole accumulated batch (across processes), so gradient
accumulation changes nothing; rows are batched by length with a seeded order (resume sees the
same batches); checkpoints are ``Student.save`` directories plus the Trainer state, written whole
or not at all; a NaN/inf loss stops the run. Its arguments come from ``build_training_args``.

Extending (PRADA, KD): subclass and override ``auxiliary_loss``, ``token_loss_sum`` or
``needs_hidden_states``. Rows may carry ``domain_ids`` and may have no labelled token at all.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import Trainer

from cotdistill.errors import CotDistillError
from cotdistill.methods.base import TrainConfig
from cotdistill.methods.checkpoints import STAGING_DIR, last_complete_checkpoint, publish_checkpoint
from cotdistill.methods.data import Collator, LengthGroupedSampler
from cotdistill.methods.student_module import SFTOutput, StudentModule
from cotdistill.methods.training_args import build_training_args, training_precision
from cotdistill.mixed_precision import MasterWeightsMixin
from cotdistill.models.student import Student

EXTRA_FILE = "extra_modules.safetensors"


class TrainingDivergedError(CotDistillError):
    """The loss became NaN or infinite; the run stopped without saving the bad weights."""


class StudentTrainer(MasterWeightsMixin, Trainer):
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
        self.precision = precision = training_precision(train, student.model)
        super().__init__(
            model=StudentModule(student, extra_modules),
            args=build_training_args(train, output_dir, precision=precision, remove_unused_columns=False),
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
