"""Pool per-token hidden states into one feature vector per row for the domain discriminator.

All functions take ``hidden`` of shape (B, T, H), where the first ``num_prompt_tokens``
positions are soft-prompt tokens (0 when there is no soft prompt), and ``question_mask`` of
shape (B, T - num_prompt_tokens) that is 1 on the question (prompt) tokens of each row and 0 on
padding and on the completion. They return (B, H).
"""

from __future__ import annotations

from enum import StrEnum

import torch


class Pooling(StrEnum):
    MEAN = "mean"  # mean over the question tokens
    LAST = "last"  # the last question token (the position that starts the answer)
    PROMPT = "prompt"  # mean over the soft-prompt tokens


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): mean over positions where ``mask`` is 1 (0 for empty rows)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def last_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): the hidden state at the last position where ``mask`` is 1."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), positions, torch.full_like(positions, -1)).amax(dim=1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool(
    hidden: torch.Tensor, question_mask: torch.Tensor, how: Pooling | str, num_prompt_tokens: int = 0
) -> torch.Tensor:
    """Pool ``hidden`` (B, P + T, H) with ``question_mask`` (B, T) by ``how`` -> (B, H)."""
    how = Pooling(how)
    if hidden.shape[1] != num_prompt_tokens + question_mask.shape[1]:
        raise ValueError(
            f"hidden has {hidden.shape[1]} positions but the prompt ({num_prompt_tokens}) and mask "
            f"({question_mask.shape[1]}) cover {num_prompt_tokens + question_mask.shape[1]}"
        )
    if how is Pooling.PROMPT:
        if num_prompt_tokens == 0:
            raise ValueError("prompt pooling needs soft-prompt tokens (num_prompt_tokens is 0)")
        return hidden[:, :num_prompt_tokens].mean(dim=1)
    tokens = hidden[:, num_prompt_tokens:]
    if how is Pooling.MEAN:
        return mean_pool(tokens, question_mask)
    return last_pool(tokens, question_mask)
