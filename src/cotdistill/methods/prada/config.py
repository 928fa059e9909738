"""The knobs of ``method: prada`` and their enums."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from cotdistill.methods.sft import SFTMethodConfig
from cotdistill.nn import LambdaSchedule, Objective, Pooling, SoftPromptConfig


class Alignment(StrEnum):
    """Which domains the discriminator sees."""

    ALL = "all"  # every source and target domain
    FAMILY = "family"  # only task families with both a source and a target domain, so task identity is not erased


class DomainLabels(StrEnum):
    DOMAIN = "domain"  # one class per domain (sources and targets)
    SOURCE_TARGET = "source_target"  # two classes: labelled source vs unlabelled target


@dataclass
class PRADAConfig(SFTMethodConfig):
    """Knobs of ``method: prada`` (the SFT knobs apply to the labelled rows)."""

    adversarial: bool = field(default=True, metadata={"help": "train against the domain discriminator (reversal)"})
    soft_prompts: bool = field(default=True, metadata={"help": "prepend trainable P-tuning soft prompts"})
    prompt: SoftPromptConfig = field(
        default_factory=SoftPromptConfig,
        metadata={"help": "soft prompt: num_tokens, per_domain_tokens, reparameterization, encoder_hidden_size"},
    )
    objective: Objective = field(
        default=Objective.CONFUSION,
        metadata={
            "help": "reversal (DANN gradient reversal: the student maximises the discriminator's loss) | "
            "confusion (the discriminator trains on detached features; the student minimises the "
            "cross-entropy of the fixed discriminator's predictions against uniform)"
        },
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
    align: Alignment = field(
        default=Alignment.ALL,
        metadata={
            "help": "all (every domain) | family (only the domains of task families that have both a source and a "
            "target domain: the same skill is aligned across surfaces, and tasks are not made indistinguishable)"
        },
    )
    align_domains: list[str] = field(
        default_factory=list,
        metadata={"help": "the domains the discriminator sees, by name (overrides align; empty: use align)"},
    )
    target_embeddings: bool = field(
        default=False,
        metadata={
            "help": "let the adversarial gradient of unlabelled target rows reach the input embeddings; false "
            "stops it there (those rows have no other gradient, so under AdamW target-only token embeddings "
            "would otherwise move at full step size whatever lambda is), the layers above still align"
        },
    )
    discriminator_hidden: int = field(default=128, metadata={"help": "hidden width of the discriminator MLP"})
    discriminator_layers: int = field(default=2, metadata={"help": "linear layers in the discriminator MLP"})
    discriminator_dropout: float = field(default=0.1, metadata={"help": "dropout inside the discriminator"})
    discriminator_lr: float = field(
        default=0.0,
        metadata={
            "help": "the discriminator's own constant learning rate (no warm-up, no decay, no weight decay); "
            "0 = the student's learning rate and schedule"
        },
    )
    target_rows: int = field(
        default=4,
        metadata={
            "help": "unlabelled target-domain questions added to each micro-batch (adversarial), "
            "taken round-robin over the target domains"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lambda_schedule = LambdaSchedule(self.lambda_schedule)
        self.objective = Objective(self.objective)
        self.pooling = Pooling(self.pooling)
        self.domain_labels = DomainLabels(self.domain_labels)
        self.align = Alignment(self.align)
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
        if self.discriminator_lr < 0 or not math.isfinite(self.discriminator_lr):
            raise ValueError(f"discriminator_lr must be a finite number >= 0, got {self.discriminator_lr}")
        if self.target_rows < 0:
            raise ValueError(f"target_rows must be >= 0, got {self.target_rows}")
        if self.pooling is Pooling.PROMPT and not self.soft_prompts:
            raise ValueError("pooling 'prompt' needs soft_prompts: true")

    @property
    def rows_per_batch_extra(self) -> int:
        """Unlabelled rows added to each micro-batch (none without the adversary)."""
        return self.target_rows if self.adversarial else 0
