"""``method: prada``: prompt-assisted domain-adversarial CoT distillation (arXiv 2501.09804).

SFT on the labelled source-domain rationales, plus a domain discriminator that reads the
student's pooled hidden states through a gradient-reversal layer, on source rows and on
unlabelled target-domain questions alike. The discriminator learns to tell the domains apart;
the student's weights (full or LoRA) and its P-tuning soft prompt receive the reversed gradient
and so learn features, and a prompt, that do not give the domain away.

Per micro-batch: ``batch_size`` labelled rows plus ``target_rows`` unlabelled ones (prompt only,
every label -100, so the SFT loss ignores them); an epoch is one pass over the labelled rows and
the unlabelled ones cycle. Loss = SFT loss + per-domain averaged cross-entropy of the
discriminator on all rows; the reversal scales the student's share by lambda (constant or the
DANN schedule over training progress), the discriminator's own gradient is not reversed.

Ablations: ``adversarial: false`` drops the discriminator (and the target rows), ``soft_prompts:
false`` drops the prompt; both off is plain SFT. The soft prompt is part of the student, so it is
saved and reloaded with every checkpoint and used by ``Student.generate``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler

from cotdistill.errors import CotDistillError
from cotdistill.methods.base import TrainConfig, TrainData, register_method
from cotdistill.methods.data import IGNORE_INDEX, LengthGroupedSampler, make_row
from cotdistill.methods.sft import SFT, SFTConfig, SFTOutput, SFTTrainer
from cotdistill.models.student import Student
from cotdistill.nn import (
    DomainDiscriminator,
    LambdaSchedule,
    Pooling,
    SoftPrompt,
    SoftPromptConfig,
    adversarial_lambda,
    domain_accuracy,
    domain_loss,
    grad_reverse,
    pool,
)

log = logging.getLogger(__name__)

DISCRIMINATOR = "discriminator"


class DomainLabels(StrEnum):
    DOMAIN = "domain"  # one class per domain (sources and targets)
    SOURCE_TARGET = "source_target"  # two classes: labelled source vs unlabelled target


@dataclass
class PRADAConfig(SFTConfig):
    """Knobs of ``method: prada`` (the SFT knobs apply to the labelled rows)."""

    adversarial: bool = field(default=True, metadata={"help": "train against the domain discriminator (reversal)"})
    soft_prompts: bool = field(default=True, metadata={"help": "prepend trainable P-tuning soft prompts"})
    prompt: SoftPromptConfig = field(
        default_factory=SoftPromptConfig,
        metadata={"help": "soft prompt: num_tokens, per_domain_tokens, reparameterization, encoder_hidden_size"},
    )
    lambda_schedule: LambdaSchedule = field(
        default=LambdaSchedule.DANN, metadata={"help": "constant | dann (2/(1+exp(-gamma*p))-1, p = progress)"}
    )
    lambda_max: float = field(default=0.1, metadata={"help": "largest reversal strength lambda"})
    gamma: float = field(default=10.0, metadata={"help": "steepness of the DANN schedule"})
    layer: int = field(
        default=-1, metadata={"help": "hidden-state layer the discriminator reads (-1 last, 0 embeddings, i layer i)"}
    )
    pooling: Pooling = field(
        default=Pooling.MEAN,
        metadata={
            "help": "mean (question tokens) | last (question token) | prompt (soft prompt; it precedes the "
            "question, so in a decoder-only student it sees only the per-domain prompt tokens)"
        },
    )
    domain_labels: DomainLabels = field(
        default=DomainLabels.DOMAIN, metadata={"help": "domain (a class per domain) | source_target (two classes)"}
    )
    discriminator_hidden: int = field(default=128, metadata={"help": "hidden width of the discriminator MLP"})
    discriminator_layers: int = field(default=2, metadata={"help": "linear layers in the discriminator MLP"})
    discriminator_dropout: float = field(default=0.1, metadata={"help": "dropout inside the discriminator"})
    target_rows: int = field(
        default=4, metadata={"help": "unlabelled target-domain questions added to each micro-batch (adversarial)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lambda_schedule = LambdaSchedule(self.lambda_schedule)
        self.pooling = Pooling(self.pooling)
        self.domain_labels = DomainLabels(self.domain_labels)
        if self.lambda_max < 0:
            raise ValueError(f"lambda_max must be >= 0, got {self.lambda_max}")
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if self.discriminator_hidden < 1 or self.discriminator_layers < 1:
            raise ValueError(
                f"discriminator_hidden and discriminator_layers must be >= 1, "
                f"got {self.discriminator_hidden}, {self.discriminator_layers}"
            )
        if not 0.0 <= self.discriminator_dropout < 1.0:
            raise ValueError(f"discriminator_dropout must be in [0, 1), got {self.discriminator_dropout}")
        if self.target_rows < 0:
            raise ValueError(f"target_rows must be >= 0, got {self.target_rows}")
        if self.pooling is Pooling.PROMPT and not self.soft_prompts:
            raise ValueError("pooling 'prompt' needs soft_prompts: true")

    @property
    def rows_per_batch_extra(self) -> int:
        """Unlabelled rows added to each micro-batch (none without the adversary)."""
        return self.target_rows if self.adversarial else 0


class MixedBatchSampler(Sampler[int]):
    """Yields micro-batches of ``labelled_per_batch`` labelled indices then ``unlabelled_per_batch``
    unlabelled ones (the DataLoader batches ``labelled_per_batch + unlabelled_per_batch`` at a time).

    Labelled rows follow ``LengthGroupedSampler`` (one pass per epoch, seeded); unlabelled rows
    cycle through seeded permutations. Only the last batch may be short.
    """

    def __init__(
        self,
        labelled: Sequence[int],
        unlabelled: Sequence[int],
        lengths: Sequence[int],
        labelled_per_batch: int,
        unlabelled_per_batch: int,
        seed: int,
        *,
        group: bool = True,
    ):
        self.labelled = list(labelled)
        self.unlabelled = list(unlabelled)
        self.labelled_per_batch = labelled_per_batch
        self.unlabelled_per_batch = unlabelled_per_batch if self.unlabelled else 0
        self.seed = seed
        self.epoch = 0
        self.inner = LengthGroupedSampler([lengths[i] for i in self.labelled], labelled_per_batch, seed, group=group)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def _batches(self) -> int:
        return -(-len(self.labelled) // self.labelled_per_batch)

    def __len__(self) -> int:
        return len(self.labelled) + self._batches() * self.unlabelled_per_batch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7)
        pool_: list[int] = []
        order = [self.labelled[i] for i in self.inner]
        for start in range(0, len(order), self.labelled_per_batch):
            yield from order[start : start + self.labelled_per_batch]
            for _ in range(self.unlabelled_per_batch):
                if not pool_:
                    pool_ = [self.unlabelled[i] for i in torch.randperm(len(self.unlabelled), generator=generator)]
                yield pool_.pop()


class PRADATrainer(SFTTrainer):
    """``SFTTrainer`` plus the reversed domain-discriminator loss (``auxiliary_loss``)."""

    def __init__(self, *args: Any, domain_classes: Sequence[int] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        config: PRADAConfig = self.method_config
        self.needs_hidden_states = config.adversarial and config.layer != -1
        self.domain_classes = torch.tensor(list(domain_classes), dtype=torch.long)

    def current_lambda(self) -> float:
        config: PRADAConfig = self.method_config
        progress = self.state.global_step / max(self.state.max_steps, 1)
        return adversarial_lambda(progress, config.lambda_schedule, max_lambda=config.lambda_max, gamma=config.gamma)

    def auxiliary_loss(self, outputs: SFTOutput, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, dict]:
        """Per-domain averaged discriminator cross-entropy on features seen through the reversal."""
        config: PRADAConfig = self.method_config
        if not config.adversarial:
            return None, {}
        hidden = outputs.last_hidden_state if config.layer == -1 else outputs.hidden_states[config.layer]
        question_mask = (inputs["labels"] == IGNORE_INDEX) & inputs["attention_mask"].bool()
        features = pool(hidden, question_mask, config.pooling, num_prompt_tokens=outputs.prefix_length)
        lam = self.current_lambda()
        logits = self._module().extra[DISCRIMINATOR](grad_reverse(features, lam))
        classes = self.domain_classes.to(logits.device)[inputs["domain_ids"]]
        loss = domain_loss(logits, classes)
        return loss, {"domain_loss": loss.item(), "domain_acc": domain_accuracy(logits, classes), "lambda": lam}

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
        )


@register_method("prada")
class PRADA(SFT):
    """SFT + gradient-reversed domain discriminator + P-tuning soft prompts (each switchable)."""

    Config = PRADAConfig
    trainer_class = PRADATrainer

    @staticmethod
    def domains(data: TrainData) -> tuple[list[str], list[str]]:
        """Sorted source (labelled) and target (unlabelled-only) domain names."""
        sources = sorted({e.domain for e in data.labelled})
        targets = sorted({e.domain for e in data.unlabelled} - set(sources))
        return sources, targets

    def domain_classes(self, data: TrainData, config: PRADAConfig) -> list[int]:
        """Discriminator class of each domain index (domain order: sources then targets)."""
        sources, targets = self.domains(data)
        if config.domain_labels is DomainLabels.SOURCE_TARGET:
            return [0] * len(sources) + [1] * len(targets)
        return list(range(len(sources) + len(targets)))

    def build_rows(self, student: Student, data: TrainData, config: PRADAConfig, train: TrainConfig) -> list[dict]:
        """SFT rows (in example order, as SFT builds them), then, when adversarial, question-only
        target rows; every row carries ``domain_ids`` (sources first, then targets, sorted)."""
        sources, targets = self.domains(data)
        index = {name: i for i, name in enumerate([*sources, *targets])}
        rows = []
        for example in data.labelled:
            part = TrainData([example], instructions=data.instructions)
            rows += [
                {**row, "domain_ids": index[example.domain]} for row in super().build_rows(student, part, config, train)
            ]
        if config.adversarial:
            for example in data.unlabelled:
                instruction = data.instruction(example.domain) if config.use_instruction else None
                row = make_row(
                    student, student.prompt(example.question, instruction), None, max_length=train.max_length
                )
                rows.append({**row, "domain_ids": index[example.domain]})
        return rows

    def extra_modules(self, student: Student, data: TrainData, config: PRADAConfig) -> dict[str, nn.Module]:
        """The domain discriminator (adversarial runs only)."""
        if not config.adversarial:
            return {}
        hidden = student.model.get_input_embeddings().embedding_dim
        return {
            DISCRIMINATOR: DomainDiscriminator(
                hidden,
                max(self.domain_classes(data, config)) + 1,
                hidden_size=config.discriminator_hidden,
                num_layers=config.discriminator_layers,
                dropout=config.discriminator_dropout,
            ).to(student.device)
        }

    def attach_soft_prompt(self, student: Student, data: TrainData, config: PRADAConfig) -> None:
        """Give ``student`` a fresh soft prompt (kept if it already has one, e.g. when resuming)."""
        if not config.soft_prompts or student.soft_prompt is not None:
            return
        sources, targets = self.domains(data)
        embeddings = student.model.get_input_embeddings().weight
        prompt = SoftPrompt(config.prompt, embeddings.shape[1], [*sources, *targets])
        prompt.match_scale(embeddings.detach())
        student.soft_prompt = prompt.to(student.device)

    def train(
        self,
        student: Student,
        data: TrainData,
        train: TrainConfig,
        config: PRADAConfig,
        output_dir: str | Path,
        *,
        resume: bool = False,
    ) -> Student:
        """Train ``student`` in place (soft prompt attached first); saves ``output_dir/final``."""
        sources, targets = self.domains(data)
        classes = self.domain_classes(data, config)
        if config.adversarial and len(set(classes)) < 2:
            raise CotDistillError(
                f"prada needs two domain classes to be adversarial; got sources {sources} and targets {targets} "
                "(add unlabelled target questions or set method.adversarial=false)"
            )
        if config.adversarial and config.pooling is Pooling.PROMPT:
            log.warning(
                "pooling 'prompt': the soft prompt comes before the question, so in a decoder-only student its "
                "hidden states do not depend on the question; the discriminator sees only the per-domain prompt "
                "tokens (%d). Use mean or last pooling to align question features.",
                config.prompt.per_domain_tokens,
            )
        torch.manual_seed(train.seed)  # the prompt and discriminator initialisation follow the run's seed
        self.attach_soft_prompt(student, data, config)
        self.trainer_class = partial(self.trainer_class, domain_classes=classes)  # composes with subclasses
        batch = replace(train, batch_size=train.batch_size + config.rows_per_batch_extra)
        return super().train(student, data, batch, config, output_dir, resume=resume)
