"""Token-level distillation losses: forward KL, reverse KL and generalized JSD, in fp32.

Each loss is a small ``nn.Module`` (torchtune ``kd_losses.py`` style). Conventions:

* ``student_logits`` and ``teacher_logits`` are ``(..., V)``; ``labels`` ``(...)`` marks the
  positions that count (``ignore_index`` elsewhere). ``forward`` returns the mean over counted
  positions, ``0`` when there are none (zero-token guard); ``token_sum`` returns the sum and the
  count, which trainers divide by the tokens of the whole accumulated batch.
* ``temperature`` divides both logits before the softmax (no T^2 rescaling, as in TRL).
* ``GeneralizedJSD(beta)`` follows TRL's convention: beta 0 is forward KL(teacher || student),
  beta 1 is reverse KL(student || teacher); the mixture is ``beta * teacher + (1 - beta) * student``.
* Top-k teachers (an offline cache, a served model's logprobs) give only the teacher's k most
  likely ids and their log-probabilities. ``topk_log_distributions`` turns both sides into
  distributions over k + 1 outcomes (the k ids plus "any other token"), so every divergence is
  proper and equals the full-vocabulary one when k = V.
* ``chunked_token_sum`` applies a loss to selected hidden states chunk by chunk, so the fp32
  ``(N, V)`` logits of a whole batch never exist at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


class Divergence(StrEnum):
    FORWARD_KL = "forward_kl"
    REVERSE_KL = "reverse_kl"
    JSD = "jsd"


def kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last dim from log-probabilities; ``0 * log 0`` counts as 0."""
    return (p_log.exp() * (p_log - q_log)).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).sum(-1)


class KDLoss(nn.Module):
    """Base class: ``divergence(student_log_probs, teacher_log_probs) -> (...)`` per position."""

    def __init__(self, temperature: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.ignore_index = ignore_index

    def divergence(self, student_log: torch.Tensor, teacher_log: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """fp32 log-softmax of ``logits / temperature``."""
        return F.log_softmax(logits.float() / self.temperature, dim=-1)

    def token_sum(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the divergence over counted positions, number of counted positions)."""
        per_token = self.divergence(self.log_probs(student_logits), self.log_probs(teacher_logits))
        return self._masked_sum(per_token, labels)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        total, count = self.token_sum(student_logits, teacher_logits, labels)
        return total / count.clamp(min=1)

    def _masked_sum(self, per_token: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if labels is None:
            return per_token.sum(), torch.tensor(per_token.numel(), device=per_token.device)
        mask = labels != self.ignore_index
        return (per_token * mask).sum(), mask.sum()


class ForwardKL(KDLoss):
    """KL(teacher || student): mass-covering."""

    def divergence(self, student_log: torch.Tensor, teacher_log: torch.Tensor) -> torch.Tensor:
        return kl(teacher_log, student_log)


class ReverseKL(KDLoss):
    """KL(student || teacher): mode-seeking."""

    def divergence(self, student_log: torch.Tensor, teacher_log: torch.Tensor) -> torch.Tensor:
        return kl(student_log, teacher_log)


class GeneralizedJSD(KDLoss):
    """``beta * KL(teacher || m) + (1 - beta) * KL(student || m)``, ``m = beta * teacher + (1 - beta) * student``."""

    def __init__(self, beta: float = 0.5, temperature: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__(temperature, ignore_index)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.beta = beta

    def divergence(self, student_log: torch.Tensor, teacher_log: torch.Tensor) -> torch.Tensor:
        if self.beta == 0.0:
            return kl(teacher_log, student_log)
        if self.beta == 1.0:
            return kl(student_log, teacher_log)
        mixture = torch.logsumexp(
            torch.stack([student_log + math.log1p(-self.beta), teacher_log + math.log(self.beta)]), dim=0
        )
        return self.beta * kl(teacher_log, mixture) + (1 - self.beta) * kl(student_log, mixture)


def build_loss(divergence: Divergence | str, *, beta: float = 0.5, temperature: float = 1.0) -> KDLoss:
    """The loss module for a divergence name."""
    divergence = Divergence(divergence)
    if divergence is Divergence.FORWARD_KL:
        return ForwardKL(temperature)
    if divergence is Divergence.REVERSE_KL:
        return ReverseKL(temperature)
    return GeneralizedJSD(beta, temperature)


def log1mexp(log_p: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(log_p))`` for ``log_p <= 0``, stable near 0 and clamped to stay finite."""
    log_p = log_p.clamp(max=-1e-7)
    return torch.where(log_p > -math.log(2), torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p)))


def topk_log_distributions(
    student_log: torch.Tensor, teacher_ids: torch.Tensor, teacher_log: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, V) student log-probs, (N, k) teacher ids and log-probs -> two (N, k + 1) log distributions.

    Outcome ``k`` is "any token outside the teacher's top k"; its probability is what the k
    listed tokens leave (clamped so it stays a valid log-probability). A teacher log-prob of
    ``-inf`` marks a missing entry (a server that returned fewer than k): it joins the rest.
    """
    teacher_top = teacher_log.float()
    student_top = student_log.gather(-1, teacher_ids.long()).masked_fill(teacher_top == -math.inf, -math.inf)
    student_rest = log1mexp(torch.logsumexp(student_top, dim=-1, keepdim=True))
    teacher_rest = log1mexp(torch.logsumexp(teacher_top, dim=-1, keepdim=True))
    return torch.cat([student_top, student_rest], -1), torch.cat([teacher_top, teacher_rest], -1)


def topk_token_sum(
    loss: KDLoss, student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_log: torch.Tensor
) -> torch.Tensor:
    """Summed divergence between the student (N, V) and a top-k teacher (N, k) at N positions.

    ``teacher_log`` are the teacher's log-probabilities (at the loss's temperature, computed
    when the teacher was scored); the student's are taken at the same temperature.
    """
    student, teacher = topk_log_distributions(loss.log_probs(student_logits), teacher_ids, teacher_log)
    return loss.divergence(student, teacher).sum()


def chunked_token_sum(
    hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], chunk_loss: Callable, chunk_size: int
) -> torch.Tensor:
    """Sum of ``chunk_loss(head(hidden[a:b]), a, b)`` over chunks of ``chunk_size`` positions.

    ``hidden`` is (N, H) at the selected positions; ``head`` maps a chunk to (n, V) logits;
    ``chunk_loss(student_logits, start, end)`` returns the chunk's summed loss (a scalar).
    With gradients on, each chunk is recomputed in the backward pass (activation checkpointing),
    so only one chunk's logits are alive at a time, forward and backward.
    """
    from torch.utils.checkpoint import checkpoint

    def one_chunk(part: torch.Tensor, start: int, end: int) -> torch.Tensor:
        return chunk_loss(head(part), start, end)

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_size):
        end = min(start + chunk_size, hidden.shape[0])
        part = hidden[start:end]
        if torch.is_grad_enabled() and part.requires_grad:
            total = total + checkpoint(one_chunk, part, start, end, use_reentrant=False)
        else:
            total = total + one_chunk(part, start, end)
    return total
