"""Domain discriminator, per-domain averaged loss, and pooling of hidden states."""

import pytest
import torch
from torch.nn import functional as F

from cotdistill.nn import DomainDiscriminator, domain_accuracy, domain_loss, grad_reverse, pool


def test_discriminator_gradient_is_not_reversed_but_features_are() -> None:
    torch.manual_seed(0)
    disc = DomainDiscriminator(6, 3, hidden_size=8, dropout=0.0)
    features = torch.randn(10, 6, requires_grad=True)
    reference = features.detach().clone().requires_grad_(True)
    ids = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 1])

    domain_loss(disc(grad_reverse(features, 0.4)), ids).backward()
    reversed_grads = [p.grad.clone() for p in disc.parameters()]
    disc.zero_grad()
    domain_loss(disc(reference), ids).backward()

    for got, want in zip(reversed_grads, (p.grad for p in disc.parameters())):
        assert torch.equal(got, want)
        assert got.abs().sum() > 0
    assert torch.allclose(features.grad, -0.4 * reference.grad)


def test_domain_loss_averages_within_then_across_domains() -> None:
    logits = torch.randn(7, 4)
    ids = torch.tensor([0, 0, 0, 0, 0, 2, 2])
    per_row = F.cross_entropy(logits, ids, reduction="none")
    expected = (per_row[:5].mean() + per_row[5:].mean()) / 2
    assert torch.allclose(domain_loss(logits, ids), expected)
    assert domain_loss(logits, ids) != pytest.approx(per_row.mean().item())


def test_domain_accuracy_is_balanced_and_input_validation() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 5.0]])
    assert domain_accuracy(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(
        (1.0 + 2 / 3) / 2
    )  # balanced over domains
    assert domain_accuracy(logits, torch.tensor([0, 1, 0, 1])) == 1.0
    with pytest.raises(ValueError, match="num_domains"):
        DomainDiscriminator(4, 1)


def test_discriminator_runs_in_fp32_on_half_features() -> None:
    disc = DomainDiscriminator(4, 2, hidden_size=8)
    assert disc(torch.randn(3, 4, dtype=torch.bfloat16)).dtype == torch.float32


def test_discriminator_stays_fp32_under_bf16_autocast() -> None:
    disc = DomainDiscriminator(4, 2, hidden_size=8).eval()
    features = torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = disc(features)
        plain_linear = torch.nn.functional.linear(features, disc.net[1].weight)
    assert plain_linear.dtype == torch.bfloat16  # autocast is on around it
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, disc(features))  # same numbers as an fp32 run


def test_pooling_mean_last_and_prompt() -> None:
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float32).view(2, 5, 1)  # P=2 prompt + T=3 tokens
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert pool(hidden, mask, "mean", num_prompt_tokens=2).flatten().tolist() == [2.5, 8.5]
    assert pool(hidden, mask, "last", num_prompt_tokens=2).flatten().tolist() == [3.0, 9.0]
    assert pool(hidden, mask, "prompt", num_prompt_tokens=2).flatten().tolist() == [0.5, 5.5]
    with pytest.raises(ValueError, match="prompt pooling"):
        pool(hidden, torch.ones(2, 5), "prompt")
    with pytest.raises(ValueError, match="positions"):
        pool(hidden, mask, "mean")
