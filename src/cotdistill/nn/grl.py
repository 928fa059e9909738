"""Gradient reversal (Ganin & Lempitsky, 2015) and its lambda schedules.

``grad_reverse(x, lam)`` is the identity in the forward pass and multiplies the incoming
gradient by ``-lam`` in the backward pass, so whatever sits *before* it (the student's
features, the soft prompts) is trained to *increase* the loss of whatever sits *after* it
(the domain discriminator), which itself is trained normally.
"""

from __future__ import annotations

import math
from enum import StrEnum

import torch


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward returns ``-lambda_ * grad`` (no gradient for ``lambda_``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.lambda_, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Return ``x`` unchanged; its gradient is flipped and scaled by ``lambda_`` (>= 0)."""
    if lambda_ < 0:
        raise ValueError(f"lambda_ must be >= 0, got {lambda_}")
    return GradientReversal.apply(x, lambda_)


class LambdaSchedule(StrEnum):
    """How the reversal strength grows with training progress ``p`` in [0, 1]."""

    CONSTANT = "constant"  # lambda = max
    DANN = "dann"  # lambda = max * (2 / (1 + exp(-gamma * p)) - 1), from 0 up to max


def adversarial_lambda(
    progress: float,
    schedule: LambdaSchedule | str = LambdaSchedule.DANN,
    *,
    max_lambda: float = 1.0,
    gamma: float = 10.0,
) -> float:
    """Reversal strength at training ``progress`` (clamped to [0, 1]) under ``schedule``."""
    p = min(max(float(progress), 0.0), 1.0)
    schedule = LambdaSchedule(schedule)
    if schedule is LambdaSchedule.CONSTANT:
        return float(max_lambda)
    return float(max_lambda) * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)
