"""On a toy two-domain problem the discriminator's accuracy falls toward chance under gradient
reversal and stays high without it, while the shared task is still learned."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bench_modules import benchmark_module
from cotdistill.nn import DomainDiscriminator, domain_accuracy, domain_loss, grad_reverse


@pytest.fixture
def one_thread():
    """Tiny ops on a shared CPU are far faster single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(lam: float, steps: int = 300, seed: int = 0) -> tuple[float, float, float]:
    """Returns (domain accuracy over the first 30 steps, over the last 50, task accuracy)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    def sample(n: int, domain: int) -> torch.Tensor:
        x = torch.randn(n, 8, generator=gen)
        x[:, 0] += 2.0 if domain == 0 else -2.0  # domains differ along dim 0, the task reads dim 1
        return x

    features = nn.Sequential(nn.Linear(8, 16), nn.Tanh())
    head = nn.Linear(16, 2)
    disc = DomainDiscriminator(16, 2, hidden_size=32, dropout=0.0)
    opt = torch.optim.Adam([*features.parameters(), *head.parameters(), *disc.parameters()], lr=1e-2)
    domains = torch.cat([torch.zeros(64), torch.ones(64)]).long()
    accuracies = []
    for _ in range(steps):
        source, target = sample(64, 0), sample(64, 1)
        fs, ft = features(source), features(target)
        logits = disc(grad_reverse(torch.cat([fs, ft]), lam))
        loss = F.cross_entropy(head(fs), (source[:, 1] > 0).long()) + domain_loss(logits, domains)
        opt.zero_grad()
        loss.backward()
        opt.step()
        accuracies.append(domain_accuracy(logits, domains))
    with torch.no_grad():
        test = sample(512, 1)
        task = (head(features(test)).argmax(-1) == (test[:, 1] > 0).long()).float().mean().item()
    return sum(accuracies[:30]) / 30, sum(accuracies[-50:]) / 50, task


def test_domain_accuracy_falls_toward_chance_under_reversal(one_thread) -> None:
    early, late, task = _train(lam=1.0)
    assert late < 0.7
    assert late < early - 0.1
    assert task > 0.9  # the target domain's task is solved through the invariant features


def test_domain_accuracy_stays_high_without_reversal(one_thread) -> None:
    _, late, task = _train(lam=0.0)
    assert late > 0.85
    assert task > 0.9


def _toy_module():
    """``benchmarks/prada_toy.py``: the domain-shift toy whose answer is known."""
    return benchmark_module("prada_toy")


def test_reversal_beats_plain_training_when_the_source_shortcut_fails_on_the_target(one_thread) -> None:
    """Source and target differ only in a nuisance feature that is a shortcut in the source: plain
    training takes it and sits at chance on the target; the reversed discriminator removes it."""
    toy = _toy_module()
    plain = [toy.train(None, 1.0, seed, steps=1000)["target_acc"] for seed in (0, 1)]
    reversal = [toy.train(toy.Objective.REVERSAL, 3.0, seed, steps=1000)["target_acc"] for seed in (0, 1)]
    assert max(plain) < 0.6
    assert min(reversal) > max(plain) + 0.1
