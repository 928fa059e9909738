"""Chunked linear + cross-entropy: the LM-head loss without materialising (N, V) fp32 logits.

``linear_cross_entropy(hidden, weight, targets, token_weight, chunk_size, softcap)`` returns
``sum_i token_weight_i * CE(softcap(hidden_i @ weight.T), targets_i)`` as an fp32 scalar. It walks
the N tokens ``chunk_size`` at a time: each chunk's logits are computed (in the autocast dtype
when autocast is on, else the inputs' dtype), turned into fp32 log-softmax statistics, and its
gradients with respect to ``hidden`` and ``weight`` are computed at once, so at most
``chunk_size x V`` fp32 values exist at any time and nothing of size (N, V) is kept for the
backward pass (the same FLOPs as the plain path: no recomputation). The backward pass only scales
the stored gradients by the incoming scalar gradient. Softmax, log-sum-exp and the loss are fp32.
"""

from __future__ import annotations

import torch


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    device = tensor.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else tensor.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, token_weight, chunk_size, softcap):  # noqa: D401
        dtype = _compute_dtype(hidden)
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            needs_hidden, needs_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            grad_hidden = torch.empty_like(hidden) if needs_hidden else None
            grad_weight = None  # fp32 (V, H), from the first chunk on
            total = hidden.new_zeros((), dtype=torch.float32)
            for start in range(0, h.shape[0], chunk_size):
                stop = start + chunk_size
                logits = (h[start:stop] @ w.T).float()
                if softcap:
                    capped = torch.tanh(logits / softcap)
                    logits = capped * softcap
                rows = torch.arange(logits.shape[0], device=logits.device)
                target = targets[start:stop]
                log_norm = torch.logsumexp(logits, dim=-1)
                scale = token_weight[start:stop].float()
                total += ((log_norm - logits[rows, target]) * scale).sum()
                if not (needs_hidden or needs_weight):
                    continue
                grad_logits = torch.exp(logits.sub_(log_norm[:, None]))  # softmax, in place of the logits
                grad_logits[rows, target] -= 1
                grad_logits *= scale[:, None]
                if softcap:
                    grad_logits *= 1 - capped.square()
                grad_logits = grad_logits.to(dtype)
                if needs_hidden:
                    grad_hidden[start:stop] = grad_logits @ w
                if needs_weight:
                    part = grad_logits.T @ h[start:stop]
                    grad_weight = part.float() if grad_weight is None else grad_weight.add_(part)
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        if grad_hidden is not None:
            grad_hidden = grad_hidden * grad_output.to(grad_hidden.dtype)
        if grad_weight is not None:
            grad_weight = (grad_weight * grad_output).to(ctx.weight_dtype)
        return grad_hidden, grad_weight, None, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    token_weight: torch.Tensor | None = None,
    *,
    chunk_size: int = 1024,
    softcap: float | None = None,
) -> torch.Tensor:
    """Weighted sum of token cross-entropies of the logits ``softcap(hidden @ weight.T)`` (fp32 scalar).

    ``hidden`` (N, H), ``weight`` (V, H) (an LM head without bias), ``targets`` (N,) in [0, V),
    ``token_weight`` (N,) or None (all 1). Equal to ``F.cross_entropy(...,
    reduction="none").mul(token_weight).sum()`` on the full logits, in value and gradient.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if token_weight is None:
        token_weight = torch.ones(targets.shape[0], device=targets.device)
    if hidden.shape[0] == 0:
        return (hidden.sum() + weight.sum()).float() * 0
    return _LinearCrossEntropy.apply(hidden, weight, targets, token_weight, chunk_size, softcap)
