"""The KD token loss as a ``StudentTrainer`` extension, so it composes with PRADA's trainer.

``KDTrainerMixin.token_loss_sum`` returns ``(1 - kd_ratio) * CE_sum + kd_ratio * KD_sum``, both
summed over the micro-batch's completion tokens; ``StudentTrainer.compute_loss`` divides that by the
completion tokens of the whole accumulated batch, so gradient accumulation changes nothing.
With ``on_policy > 0``, ``get_batch_samples`` replaces that share of micro-batches by student
samples (``onpolicy.py``) before the tokens are counted.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from cotdistill.methods.kd.config import KDConfig
from cotdistill.methods.kd.losses import KDLoss, build_loss, chunked_token_sum
from cotdistill.methods.kd.onpolicy import on_policy_batch
from cotdistill.methods.kd.sources import OnlineSource, TopKSource
from cotdistill.methods.kd.teacher import completion_mask, head_logits
from cotdistill.methods.prada import PRADATrainer
from cotdistill.methods.student_module import SFTOutput
from cotdistill.methods.student_trainer import StudentTrainer


class KDTrainerMixin:
    """Mix in before a ``StudentTrainer`` subclass; needs ``teacher_source=`` at construction."""

    method_config: KDConfig

    def __init__(self, *args: Any, teacher_source: OnlineSource | TopKSource, **kwargs: Any):
        super().__init__(*args, **kwargs)
        config = self.method_config
        self.teacher_source = teacher_source
        if self.precision.master_weights and isinstance(teacher_source, OnlineSource):
            # frozen, so no master copy: the teacher runs in bf16 like the student, without autocast
            teacher_source.teacher.model.to(torch.bfloat16)
        self.kd_loss: KDLoss = build_loss(config.divergence, beta=config.beta, temperature=config.temperature)

    def kd_token_sum(self, outputs: SFTOutput, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The divergence summed over the micro-batch's completion positions (fp32, chunked)."""
        hidden = outputs.last_hidden_state[:, outputs.prefix_length : -1][completion_mask(inputs["labels"])]
        if hidden.shape[0] == 0:
            return outputs.loss_sum.new_zeros(())
        model = self._module().model
        chunk = self.teacher_source.chunk_loss(self.kd_loss, inputs)
        return chunked_token_sum(hidden, lambda h: head_logits(model, h), chunk, self.method_config.chunk_size)

    def token_loss_sum(self, outputs: SFTOutput, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        ce_sum, logs = super().token_loss_sum(outputs, inputs)
        kd_sum = self.kd_token_sum(outputs, inputs)
        ratio = self.method_config.kd_ratio
        logs = {**logs, "kd_loss": float(kd_sum.detach()) / max(int(outputs.num_tokens), 1)}
        return (1 - ratio) * ce_sum + ratio * kd_sum, logs

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        config = self.method_config
        if config.on_policy <= 0 or not batches:
            return batches, num_items
        rng = random.Random(self.args.seed * 1_000_003 + self.state.global_step)
        batches = [
            on_policy_batch(
                self.student,
                batch,
                self.data_collator,
                max_new_tokens=config.max_new_tokens,
                temperature=config.sample_temperature,
                max_length=self.train_config.max_length,
            )
            if rng.random() < config.on_policy
            else batch
            for batch in batches
        ]
        return batches, self._get_num_items_in_batch(batches, device)


class KDTrainer(KDTrainerMixin, StudentTrainer):
    """SFT trainer whose token loss mixes CE with a divergence to the teacher."""


class KDPRADATrainer(KDTrainerMixin, PRADATrainer):
    """PRADA's trainer (reversed domain discriminator) with KD's token loss."""
