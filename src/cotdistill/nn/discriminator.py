"""The domain discriminator: a small MLP on pooled student features, and its loss.

The discriminator is trained normally to tell domains apart; the features it reads arrive
through ``grl.grad_reverse``, so the student is pushed the other way.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DomainDiscriminator(nn.Module):
    """MLP (B, in_features) -> logits (B, num_domains); computes in fp32 whatever the input dtype
    (autocast is switched off inside, so its linears stay fp32 in a bf16/fp16 run)."""

    def __init__(
        self, in_features: int, num_domains: int, hidden_size: int = 128, num_layers: int = 2, dropout: float = 0.1
    ):
        super().__init__()
        if num_domains < 2:
            raise ValueError(f"num_domains must be >= 2, got {num_domains}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = [nn.LayerNorm(in_features)]
        width = in_features
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden_size), nn.GELU(), nn.Dropout(dropout)]
            width = hidden_size
        layers.append(nn.Linear(width, num_domains))
        self.net = nn.Sequential(*layers)
        self.num_domains = num_domains

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=features.device.type, enabled=False):
            return self.net(features.float())


def per_domain_mean(losses: torch.Tensor, domain_ids: torch.Tensor, num_domains: int) -> torch.Tensor:
    """Mean of ``losses`` (B,) within each domain present, then across those domains (scalar)."""
    sums = losses.new_zeros(num_domains).index_add(0, domain_ids, losses)
    counts = torch.bincount(domain_ids, minlength=num_domains).to(losses.dtype)
    present = (counts > 0).to(losses.dtype)
    return (sums / counts.clamp(min=1.0)).sum() / present.sum()


def domain_loss(logits: torch.Tensor, domain_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged within each domain present, then across domains (scalar, fp32).

    ``logits`` (B, D), ``domain_ids`` (B,) in [0, D). Each domain weighs the same however many
    rows it has in the batch, so a batch dominated by source rows still trains on the targets.
    """
    losses = F.cross_entropy(logits.float(), domain_ids, reduction="none")
    return per_domain_mean(losses, domain_ids, logits.shape[-1])


def confusion_loss(logits: torch.Tensor, domain_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the uniform distribution, averaged per domain like ``domain_loss``.

    ``logits`` (B, D), ``domain_ids`` (B,) in [0, D). The student's side of the confusion objective
    (Tzeng et al., 2015): it is smallest (ln D) when the discriminator cannot tell the domains
    apart, and, unlike the reversed cross-entropy, it gives no reward for making the
    discriminator confidently wrong, so it cannot be lowered by relabelling the domains.
    """
    losses = -F.log_softmax(logits.float(), dim=-1).mean(dim=-1)
    return per_domain_mean(losses, domain_ids, logits.shape[-1])


def domain_accuracy(logits: torch.Tensor, domain_ids: torch.Tensor) -> float:
    """Balanced accuracy: the fraction of right arg-max domains within each domain present,
    averaged over those domains (like ``domain_loss``), so chance is 1 / number of classes
    whatever the batch's mix of domains."""
    right = (logits.argmax(dim=-1) == domain_ids).float()
    return per_domain_mean(right, domain_ids, logits.shape[-1]).item()
