"""The decode loop behind ``GenerationEngine``: batched KV-cache generation that drops finished rows.

``transformers``' ``generate`` runs every row of a batch until its longest row ends, so one
runaway completion keeps the whole batch's matmuls going. This loop removes a row from the batch
(and from the KV cache) as soon as it ends, so each step costs what the rows still alive need.

Contract (``decode(model, attention_mask, settings, input_ids=... | inputs_embeds=...)``):

* the prompt is left-padded: ``attention_mask`` (B, T) marks its real tokens; positions count
  real tokens only (as ``generate`` does);
* ``settings.n`` rows per prompt (prompt-major: prompt 0's rows first); the prompt is prefilled
  once and its KV cache repeated;
* a row ends at the first of ``settings.eos_ids`` (kept as its last id), once ``done(new_ids)``
  says so (a stop string; the triggering id is kept), or at ``settings.max_new_tokens``;
* temperature 0 is greedy; above it, logits / temperature, then nucleus ``top_p`` (the smallest
  set of tokens whose probability reaches ``top_p``; no top-k), sampled from the caller's torch RNG;
* the caller sets the mode, grad and precision (``GenerationEngine.generate_batch``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Done = Callable[[Sequence[int]], bool]


@dataclass(frozen=True)
class DecodeSettings:
    """What ends a row and how the next token is drawn (see the module docstring)."""

    max_new_tokens: int
    eos_ids: frozenset[int]
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1


def next_tokens(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """One token per row of ``logits`` (R, V): argmax at temperature 0, else a nucleus sample. -> (R,)"""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=False)
        outside = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        outside[..., -1] = False  # the most likely token always stays
        logits = logits.masked_fill(outside.scatter(-1, order, outside), float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1).squeeze(-1)


def cache_argument(model: nn.Module) -> str:
    """The forward keyword that takes the KV cache: ``cache`` (transformers >= 5.2x), else ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT model forwards **kwargs
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def prompt_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids (B, T) of a left-padded batch: 0 at each row's first real token (padding gets 1)."""
    positions = attention_mask.long().cumsum(dim=-1) - 1
    return positions.masked_fill(attention_mask == 0, 1)


@torch.no_grad()
def decode(
    model: nn.Module,
    attention_mask: torch.Tensor,
    settings: DecodeSettings,
    *,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    done: Done | None = None,
) -> list[list[int]]:
    """New ids for every row: B prompts -> B * ``settings.n`` lists, prompt-major (see the module docstring)."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("decode needs exactly one of input_ids and inputs_embeds")
    mask = attention_mask
    positions = prompt_positions(mask)
    prompt = {"input_ids": input_ids} if input_ids is not None else {"inputs_embeds": inputs_embeds}
    out = model(**prompt, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache_key = cache_argument(model)
    cache, logits = getattr(out, cache_key), out.logits[:, -1]
    position = positions[:, -1:]
    if settings.n > 1:
        cache.batch_repeat_interleave(settings.n)
        logits, mask, position = (t.repeat_interleave(settings.n, dim=0) for t in (logits, mask, position))
    rows: list[list[int]] = [[] for _ in range(logits.shape[0])]
    alive = list(range(len(rows)))  # the output row of each row still in the batch
    for step in range(settings.max_new_tokens):
        tokens = next_tokens(logits, settings.temperature, settings.top_p)
        last = step + 1 == settings.max_new_tokens
        keep = []
        for j, token in enumerate(tokens.tolist()):
            row = rows[alive[j]]
            row.append(token)
            if not (last or token in settings.eos_ids or (done is not None and done(row))):
                keep.append(j)
        if not keep:
            break
        if len(keep) < len(alive):
            index = torch.tensor(keep, device=tokens.device)
            cache.batch_select_indices(index)
            tokens, mask, position = tokens[index], mask[index], position[index]
            alive = [alive[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=-1)
        position = position + 1
        out = model(
            input_ids=tokens[:, None], attention_mask=mask, position_ids=position, use_cache=True, **{cache_key: cache}
        )
        logits = out.logits[:, -1]
    return rows
