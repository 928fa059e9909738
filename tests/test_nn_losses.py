"""Chunked linear + cross-entropy equals the full-logits loss in value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cotdistill.nn.losses import linear_cross_entropy


def full_logits_loss(hidden, weight, targets, token_weight=None, softcap=None):
    logits = F.linear(hidden, weight).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    losses = F.cross_entropy(logits, targets, reduction="none")
    return (losses if token_weight is None else losses * token_weight).sum()


def loss_and_grads(fn, hidden, weight, targets, token_weight, softcap, autocast=False, **kw):
    hidden = hidden.detach().requires_grad_()
    weight = weight.detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = fn(hidden, weight, targets, token_weight, softcap=softcap, **kw)
    (3.0 * loss).backward()  # a non-unit upstream gradient
    return loss.detach(), hidden.grad, weight.grad


def inputs(n=37, h=16, v=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, h, generator=g),
        torch.randn(v, h, generator=g) * 0.3,
        torch.randint(0, v, (n,), generator=g),
        torch.rand(n, generator=g),
    )


@pytest.mark.parametrize("chunk_size", [1, 8, 37, 1000])
@pytest.mark.parametrize("softcap", [None, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_the_full_logits_loss_in_fp32(chunk_size, softcap, weighted):
    hidden, weight, targets, token_weight = inputs()
    token_weight = token_weight if weighted else None
    got = loss_and_grads(linear_cross_entropy, hidden, weight, targets, token_weight, softcap, chunk_size=chunk_size)
    want = loss_and_grads(full_logits_loss, hidden, weight, targets, token_weight, softcap)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_under_bf16_autocast_it_stays_close_and_returns_fp32():
    hidden, weight, targets, token_weight = inputs(n=64, h=32, v=200)
    loss, grad_h, grad_w = loss_and_grads(
        linear_cross_entropy, hidden, weight, targets, token_weight, None, autocast=True, chunk_size=16
    )
    want = loss_and_grads(full_logits_loss, hidden, weight, targets, token_weight, None)
    assert loss.dtype == grad_h.dtype == grad_w.dtype == torch.float32
    torch.testing.assert_close(loss, want[0], rtol=2e-2, atol=0)
    for got, ref in ((grad_h, want[1]), (grad_w, want[2])):
        assert (got - ref).norm() / ref.norm() < 0.03


def test_no_tokens_gives_a_zero_loss_that_still_backpropagates():
    hidden, weight = torch.randn(0, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    loss = linear_cross_entropy(hidden, weight, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert float(loss) == 0.0 and float(weight.grad.abs().sum()) == 0.0


def test_bad_chunk_size_is_refused():
    hidden, weight, targets, _ = inputs()
    with pytest.raises(ValueError, match="chunk_size"):
        linear_cross_entropy(hidden, weight, targets, chunk_size=0)


def test_the_sft_loss_takes_the_chunked_path_for_large_logits_with_the_same_result(monkeypatch):
    from cotdistill.methods import student_module as sft

    hidden, weight, targets, token_weight = inputs(n=40, h=8, v=30)
    head = torch.nn.Linear(8, 30, bias=False)
    head.weight.data.copy_(weight)
    plain = sft.completion_loss_sum(head, hidden, targets, token_weight, None)
    calls = []
    monkeypatch.setattr(sft, "CHUNKED_LOSS_MIN_LOGITS", 1)
    monkeypatch.setattr(sft, "linear_cross_entropy", lambda *a, **k: calls.append(1) or linear_cross_entropy(*a, **k))
    chunked = sft.completion_loss_sum(head, hidden, targets, token_weight, None)
    assert calls and torch.allclose(plain, chunked, rtol=1e-5)
