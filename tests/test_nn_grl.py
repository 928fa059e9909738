"""Gradient reversal: identity forward, exactly -lambda * grad backward; lambda schedules."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cotdistill.nn import LambdaSchedule, adversarial_lambda, grad_reverse


def _loss(x: torch.Tensor) -> torch.Tensor:
    return (x.sin() * torch.arange(x.numel(), dtype=x.dtype).view_as(x)).sum()


@settings(max_examples=25, deadline=None)
@given(lam=st.floats(min_value=0.0, max_value=10.0), seed=st.integers(0, 2**16))
def test_reversal_flips_and_scales_gradient_exactly(lam: float, seed: int) -> None:
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64, requires_grad=True)
    reference = x.detach().clone().requires_grad_(True)

    y = grad_reverse(x, lam)
    assert torch.equal(y, x)
    _loss(y).backward()
    _loss(reference).backward()

    assert torch.equal(x.grad, -lam * reference.grad)


def test_zero_lambda_blocks_the_gradient_but_keeps_the_graph() -> None:
    x = torch.randn(4, requires_grad=True)
    (grad_reverse(x * 2, 0.0) ** 2).sum().backward()
    assert torch.equal(x.grad, torch.zeros(4))


def test_negative_lambda_is_rejected() -> None:
    with pytest.raises(ValueError, match="-0.5"):
        grad_reverse(torch.zeros(2, requires_grad=True), -0.5)


def test_dann_schedule_rises_from_zero_to_max() -> None:
    values = [adversarial_lambda(p / 10, "dann", max_lambda=0.3, gamma=10.0) for p in range(11)]
    assert values[0] == 0.0
    assert values[-1] == pytest.approx(0.3 * (2 / (1 + math.exp(-10.0)) - 1))
    assert all(a < b for a, b in zip(values, values[1:]))
    assert adversarial_lambda(0.5, LambdaSchedule.DANN, gamma=2.0) == pytest.approx(2 / (1 + math.exp(-1.0)) - 1)


def test_constant_schedule_and_progress_clamping() -> None:
    assert adversarial_lambda(0.0, "constant", max_lambda=0.7) == 0.7
    assert adversarial_lambda(0.9, "constant", max_lambda=0.7) == 0.7
    assert adversarial_lambda(3.0, "dann") == adversarial_lambda(1.0, "dann")
    with pytest.raises(ValueError):
        adversarial_lambda(0.5, "linear")
