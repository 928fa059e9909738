"""The adversarial term of domain-adversarial training, for either objective.

``reversal`` (DANN, Ganin & Lempitsky 2015): the discriminator descends its cross-entropy on
features seen through ``grad_reverse``; the student ascends the same cross-entropy, times lambda.
Nothing bounds the student's side, so it can keep the domains perfectly separable and only make the
discriminator confidently wrong (the loss then climbs far above ln K with accuracy below chance).

``confusion`` (Tzeng et al. 2015): the discriminator descends its cross-entropy on *detached*
features; the student descends lambda times the cross-entropy of the same discriminator's
predictions (its parameters held fixed) against the uniform distribution, which is smallest when
the domains cannot be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import nn
from torch.func import functional_call

from cotdistill.nn.discriminator import confusion_loss, domain_loss
from cotdistill.nn.grl import grad_reverse


class Objective(StrEnum):
    """What the student is trained to do to the discriminator."""

    REVERSAL = "reversal"
    CONFUSION = "confusion"


@dataclass
class AdversarialTerms:
    """``total``: the scalar to add to the task loss (its gradients already split between the
    discriminator and the student as the objective says); ``domain_loss``: the discriminator's
    per-domain averaged cross-entropy; ``logits`` (B, K): its predictions; ``confusion``: the
    student's confusion loss (``confusion`` objective only)."""

    total: torch.Tensor
    domain_loss: torch.Tensor
    logits: torch.Tensor
    confusion: torch.Tensor | None = None


def adversarial_terms(
    discriminator: nn.Module,
    features: torch.Tensor,
    classes: torch.Tensor,
    lam: float,
    objective: Objective | str = Objective.REVERSAL,
) -> AdversarialTerms:
    """The adversarial loss for pooled ``features`` (B, H) with domain ``classes`` (B,) in [0, K)."""
    if Objective(objective) is Objective.REVERSAL:
        logits = discriminator(grad_reverse(features, lam))
        loss = domain_loss(logits, classes)
        return AdversarialTerms(loss, loss, logits)
    logits = discriminator(features.detach())
    loss = domain_loss(logits, classes)
    fixed = {name: value.detach() for name, value in discriminator.named_parameters()}
    confusion = confusion_loss(functional_call(discriminator, fixed, (features,)), classes)
    return AdversarialTerms(loss + lam * confusion, loss, logits, confusion)
