"""An attention implementation that is fast for short sequences on CPU: plain matmul attention.

PyTorch's CPU flash-attention kernel (what ``sdpa`` picks) is slow at the lengths CoT rows have:
at 146 tokens its forward + backward takes 1.7x as long as two batched matmuls and a softmax, and
it only wins from about 256 tokens (``benchmarks/bench_attention.py``). ``short_attention_forward``
computes ``softmax(q k^T * scale + mask) v`` with matmuls when the query/key area
``q_len * kv_len`` is at most ``EAGER_MAX_AREA`` on a CPU tensor, and hands every other call
(long sequences, GPUs, attention sinks, soft-capping) to transformers' ``sdpa_attention_forward``.
Its masks are ``sdpa``'s, so a GPU run computes exactly what ``sdpa`` does.

``use_short_attention(model)`` switches a model whose attention is ``sdpa`` (transformers' default)
to it; a model loaded with another implementation keeps it. The choice is runtime only:
``config.json`` does not record it.
"""

from __future__ import annotations

import torch
from torch import nn

NAME = "cotdistill_short_sdpa"

EAGER_MAX_AREA = 2**15
"""Largest ``q_len * kv_len`` computed with matmuls (about 181 x 181 tokens)."""


def _repeat_kv(states: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, KV, T, D) -> (B, KV * groups, T, D), each key/value head repeated for its query group."""
    if groups == 1:
        return states
    b, kv, t, d = states.shape
    return states[:, :, None].expand(b, kv, groups, t, d).reshape(b, kv * groups, t, d)


def _uses_matmuls(query: torch.Tensor, key: torch.Tensor, kwargs: dict) -> bool:
    if query.device.type != "cpu" or query.shape[-2] * key.shape[-2] > EAGER_MAX_AREA:
        return False
    return kwargs.get("softcap") is None and kwargs.get("s_aux") is None and kwargs.get("position_bias") is None


def matmul_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    is_causal: bool | None = None,
) -> torch.Tensor:
    """(B, H, Tq, D) query, (B, KV, Tk, D) key/value -> (B, Tq, H, D) output.

    ``attention_mask`` is ``sdpa``'s: a boolean (B, 1, Tq, Tk) mask (True attends), an additive
    float mask, or None for "causal" aligned top-left as ``sdpa``'s ``is_causal`` (no mask at all for
    one query token or a non-causal module). The scores and softmax are fp32; masked positions get the fp32 minimum, so
    a fully masked row is uniform instead of NaN, as with ``eager``.
    """
    groups = query.shape[1] // key.shape[1]
    key, value = _repeat_kv(key, groups), _repeat_kv(value, groups)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)).float() * scale
    q_len, kv_len = query.shape[-2], key.shape[-2]
    causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    if attention_mask is None and causal and q_len > 1:
        attention_mask = torch.ones(q_len, kv_len, dtype=torch.bool, device=query.device).tril()
    if attention_mask is not None:
        attention_mask = attention_mask[..., :kv_len]
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(torch.float32).min)
        else:
            scores = scores + attention_mask.float()
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    probs = nn.functional.dropout(probs, p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous()


def short_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: ``(output (B, Tq, H, D), None)``."""
    if _uses_matmuls(query, key, kwargs):
        return matmul_attention(module, query, key, value, attention_mask, scaling, dropout, is_causal), None
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
    )


def register() -> str:
    """Register the implementation (and ``sdpa``'s mask builder under its name) with transformers."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, short_attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def use_short_attention(model: nn.Module) -> nn.Module:
    """Switch ``model`` (and its sub-models) from ``sdpa`` to ``short_attention_forward``, in place."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(model, "set_attn_implementation"):
        return model
    model.set_attn_implementation(register())
    return model
