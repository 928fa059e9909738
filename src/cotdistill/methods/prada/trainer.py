"""``PRADATrainer``: the SFT trainer plus the domain-adversarial term and the discriminator's optimizer group."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cotdistill.methods.data import IGNORE_INDEX
from cotdistill.methods.prada.config import PRADAConfig
from cotdistill.methods.prada.sampler import MixedBatchSampler
from cotdistill.methods.student_module import SFTOutput
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.nn import Objective, adversarial_lambda, adversarial_terms, domain_accuracy, pool

log = logging.getLogger(__name__)

DISCRIMINATOR = "discriminator"


class PRADATrainer(StudentTrainer):
    """``StudentTrainer`` plus the reversed domain-discriminator loss (``auxiliary_loss``)."""

    def __init__(self, *args: Any, domain_classes: Sequence[int] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        config: PRADAConfig = self.method_config
        self.needs_hidden_states = config.adversarial and config.layer != -1
        self.domain_classes = torch.tensor(list(domain_classes), dtype=torch.long)
        self._module().unlabelled_rows_train_embeddings = config.target_embeddings
        self._relabel_warned = False

    def current_lambda(self) -> float:
        config: PRADAConfig = self.method_config
        progress = self.state.global_step / max(self.state.max_steps, 1)
        return adversarial_lambda(progress, config.lambda_schedule, max_lambda=config.lambda_max, gamma=config.gamma)

    def auxiliary_loss(self, outputs: SFTOutput, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, dict]:
        """The adversarial term (``nn.adversarial_terms``) on the pooled question features."""
        config: PRADAConfig = self.method_config
        if not config.adversarial:
            return None, {}
        hidden = outputs.last_hidden_state if config.layer == -1 else outputs.hidden_states[config.layer]
        question_mask = (inputs["labels"] == IGNORE_INDEX) & inputs["attention_mask"].bool()
        features = pool(hidden, question_mask, config.pooling, num_prompt_tokens=outputs.prefix_length)
        lam = self.current_lambda()
        classes = self.domain_classes.to(features.device)[inputs["domain_ids"]]
        seen = classes >= 0
        if not seen.any():
            return None, {"lambda": lam}
        features, classes = features[seen], classes[seen]
        terms = adversarial_terms(self._module().extra[DISCRIMINATOR], features, classes, lam, config.objective)
        logs = {"domain_loss": terms.domain_loss.item(), "domain_acc": domain_accuracy(terms.logits, classes)}
        if terms.confusion is not None:
            logs["confusion_loss"] = terms.confusion.item()
        return terms.total, {**logs, "lambda": lam}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Log as SFT does, and warn once when the reversal relabels the domains instead of mixing them."""
        super().log(logs, start_time)
        classes = int(self.domain_classes.max()) + 1 if len(self.domain_classes) else 0
        loss, accuracy = logs.get("domain_loss"), logs.get("domain_acc")
        reversal = self.method_config.objective is Objective.REVERSAL
        if self._relabel_warned or not reversal or loss is None or accuracy is None or classes < 2:
            return
        if loss > 1.5 * math.log(classes) and accuracy < 1.0 / classes:
            self._relabel_warned = True
            log.warning(
                "domain loss %.2f is far above ln %d = %.2f with balanced accuracy %.2f below chance: the student "
                "makes the discriminator confidently wrong (domains relabelled, not mixed). Try "
                "method.objective=confusion or a smaller lambda_max.",
                loss,
                classes,
                math.log(classes),
                accuracy,
            )

    # ------------------------------------------------------------------ the discriminator's optimizer group

    def _discriminator_parameters(self) -> list[nn.Parameter]:
        extra = self._module().extra
        return list(extra[DISCRIMINATOR].parameters()) if DISCRIMINATOR in extra else []

    def create_optimizer(self, model: nn.Module | None = None):
        """With ``discriminator_lr`` set, the discriminator gets its own parameter group (that
        learning rate, no weight decay); the student's groups are the Trainer's usual ones."""
        config: PRADAConfig = self.method_config
        disc = self._discriminator_parameters()
        if self.optimizer is None and config.discriminator_lr and disc:
            model = model if model is not None else self.model
            disc_ids = {id(p) for p in disc}
            decay = set(self.get_decay_parameter_names(model))
            named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in disc_ids]
            groups = [
                {"params": [p for n, p in named if n in decay], "weight_decay": self.args.weight_decay},
                {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
                {"params": disc, "weight_decay": 0.0, "lr": config.discriminator_lr},
            ]
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_cls([g for g in groups if g["params"]], **kwargs)
        return super().create_optimizer(model)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """The Trainer's schedule for the student; a constant learning rate for the discriminator's own group."""
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        config: PRADAConfig = self.method_config
        if config.discriminator_lr and self._discriminator_parameters() and hasattr(scheduler, "lr_lambdas"):
            scheduler.lr_lambdas[-1] = _constant_one  # the discriminator's group is the last one
            scheduler.optimizer.param_groups[-1]["lr"] = scheduler.base_lrs[-1]
        return scheduler

    def _clip_grad_norm(self, model: nn.Module) -> torch.Tensor:
        """Clip the student's and the discriminator's gradients separately; returns the student's norm.

        One global norm would let the discriminator's gradient (not scaled by lambda) shrink the
        student's SFT step whenever the discriminator learns fast. DeepSpeed and FSDP clip inside
        their own engines, so they keep the Trainer's global clip.
        """
        from accelerate.utils import DistributedType

        extra = list(self._module().extra.parameters())
        if not extra or self.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
            return super()._clip_grad_norm(model)
        extra_ids = {id(p) for p in extra}
        student = [p for p in model.parameters() if id(p) not in extra_ids]
        self.accelerator.clip_grad_norm_(extra, self.args.max_grad_norm)
        return self.accelerator.clip_grad_norm_(student, self.args.max_grad_norm)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        config: PRADAConfig = self.method_config
        extra = config.rows_per_batch_extra
        unlabelled = [i for i, r in enumerate(dataset) if all(label == IGNORE_INDEX for label in r["labels"])]
        if not extra or not unlabelled:
            return super()._get_train_sampler(dataset)
        skip = set(unlabelled)
        labelled = [i for i in range(len(dataset)) if i not in skip]
        return MixedBatchSampler(
            labelled,
            unlabelled,
            [len(r["input_ids"]) for r in dataset],
            self.args.per_device_train_batch_size - extra,
            extra,
            self.args.seed,
            group=self.train_config.group_by_length,
            unlabelled_groups=[dataset[i]["domain_ids"] for i in unlabelled],
        )


def _constant_one(step: int) -> float:
    """Learning-rate multiplier of the discriminator's own group: constant."""
    return 1.0
