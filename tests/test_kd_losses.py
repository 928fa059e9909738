"""KD losses against reference computations: TRL's generalized JSD, explicit KL sums, top-k with a
tail bucket, chunking, temperature, the ignore index and the zero-token guard."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cotdistill.methods.kd.losses import (
    IGNORE_INDEX,
    ForwardKL,
    GeneralizedJSD,
    ReverseKL,
    build_loss,
    chunked_token_sum,
    topk_log_distributions,
    topk_token_sum,
)


def trl_jsd(student, teacher, labels, beta, temperature=1.0):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl.experimental.gkd import GKDTrainer

    return GKDTrainer.generalized_jsd_loss(
        student, teacher, labels=labels, beta=beta, temperature=temperature, reduction="sum"
    )


@pytest.fixture
def logits():
    torch.manual_seed(0)
    student = torch.randn(2, 5, 11, dtype=torch.float64).float() * 2
    teacher = torch.randn(2, 5, 11) * 2
    labels = torch.tensor([[IGNORE_INDEX, 3, 4, IGNORE_INDEX, 1], [2, IGNORE_INDEX, IGNORE_INDEX, 7, 8]])
    return student, teacher, labels


def explicit_kl(p_logits, q_logits):
    """KL(p || q) per position, written out term by term."""
    p, log_p, log_q = F.softmax(p_logits, -1), F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1)
    return (p * (log_p - log_q)).sum(-1)


def test_forward_and_reverse_kl_match_explicit_sums(logits):
    student, teacher, labels = logits
    mask = labels != IGNORE_INDEX
    forward_sum, count = ForwardKL().token_sum(student, teacher, labels)
    assert int(count) == int(mask.sum())
    assert torch.allclose(forward_sum, explicit_kl(teacher, student)[mask].sum(), atol=1e-5)
    reverse_sum, _ = ReverseKL().token_sum(student, teacher, labels)
    assert torch.allclose(reverse_sum, explicit_kl(student, teacher)[mask].sum(), atol=1e-5)
    assert torch.allclose(ForwardKL()(student, teacher, labels), forward_sum / mask.sum())


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_generalized_jsd_matches_trl(logits, beta, temperature):
    student, teacher, labels = logits
    ours, _ = GeneralizedJSD(beta, temperature).token_sum(student, teacher, labels)
    assert torch.allclose(ours, trl_jsd(student, teacher, labels, beta, temperature), atol=1e-5)


def test_beta_ends_are_forward_and_reverse_kl(logits):
    student, teacher, labels = logits
    assert torch.allclose(GeneralizedJSD(0.0)(student, teacher, labels), ForwardKL()(student, teacher, labels))
    assert torch.allclose(GeneralizedJSD(1.0)(student, teacher, labels), ReverseKL()(student, teacher, labels))
    assert isinstance(build_loss("reverse_kl"), ReverseKL)


def test_temperature_divides_both_logits(logits):
    student, teacher, labels = logits
    scaled = ForwardKL(temperature=2.0)(student, teacher, labels)
    assert torch.allclose(scaled, ForwardKL()(student / 2, teacher / 2, labels))


def test_ignore_index_positions_do_not_count(logits):
    student, teacher, labels = logits
    changed = teacher.clone()
    changed[labels == IGNORE_INDEX] = torch.randn_like(changed[labels == IGNORE_INDEX]) * 5
    for loss in (ForwardKL(), ReverseKL(), GeneralizedJSD(0.3)):
        assert torch.allclose(loss(student, teacher, labels), loss(student, changed, labels))


def test_zero_token_guard_gives_zero_loss_and_finite_gradient(logits):
    student, teacher, _ = logits
    student = student.clone().requires_grad_(True)
    labels = torch.full(student.shape[:-1], IGNORE_INDEX)
    for loss in (ForwardKL(), ReverseKL(), GeneralizedJSD(0.5)):
        value = loss(student, teacher, labels)
        value.backward()
        assert float(value.detach()) == 0.0
        assert torch.isfinite(student.grad).all() and float(student.grad.abs().sum()) == 0.0
        student.grad = None


def test_identical_distributions_have_zero_divergence(logits):
    student, _, labels = logits
    for loss in (ForwardKL(), ReverseKL(), GeneralizedJSD(0.5)):
        assert float(loss(student, student.clone(), labels)) == pytest.approx(0.0, abs=1e-6)


def test_fp32_even_for_bf16_logits(logits):
    student, teacher, labels = logits
    value = ForwardKL()(student.bfloat16(), teacher.bfloat16(), labels)
    assert value.dtype == torch.float32
    assert torch.allclose(value, ForwardKL()(student.bfloat16().float(), teacher.bfloat16().float(), labels))


@pytest.mark.parametrize("loss", [ForwardKL(), ReverseKL(), GeneralizedJSD(0.5)])
def test_topk_with_k_equal_to_vocab_is_the_full_divergence(logits, loss):
    student, teacher, _ = logits
    s, t = student.reshape(-1, 11), teacher.reshape(-1, 11)
    top = F.log_softmax(t, -1).topk(11, -1)
    full = loss.token_sum(s, t)[0]
    assert torch.allclose(topk_token_sum(loss, s, top.indices, top.values), full, atol=1e-4)


def test_topk_tail_bucket_reference():
    student = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    teacher = torch.tensor([[0.5, 2.0, 0.0, -1.0]])
    top = F.log_softmax(teacher, -1).topk(2, -1)  # ids 1, 0
    s_dist, t_dist = topk_log_distributions(F.log_softmax(student, -1), top.indices, top.values)
    ps, pt = F.softmax(student, -1)[0], F.softmax(teacher, -1)[0]
    expected_s = torch.stack([ps[1], ps[0], ps[2] + ps[3]])
    expected_t = torch.stack([pt[1], pt[0], pt[2] + pt[3]])
    assert torch.allclose(s_dist[0].exp(), expected_s, atol=1e-6)
    assert torch.allclose(t_dist[0].exp(), expected_t, atol=1e-6)
    expected_forward = (expected_t * (expected_t.log() - expected_s.log())).sum()
    assert torch.allclose(topk_token_sum(ForwardKL(), student, top.indices, top.values), expected_forward, atol=1e-6)


def test_missing_topk_entries_join_the_tail():
    student = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    teacher = torch.tensor([[0.5, 2.0, 0.0, -1.0]])
    top = F.log_softmax(teacher, -1).topk(2, -1)
    padded_ids = torch.cat([top.indices, torch.tensor([[3]])], -1)
    padded_log = torch.cat([top.values, torch.tensor([[-math.inf]])], -1)
    for loss in (ForwardKL(), ReverseKL(), GeneralizedJSD(0.5)):
        padded = topk_token_sum(loss, student, padded_ids, padded_log)
        assert torch.isfinite(padded)
        assert torch.allclose(padded, topk_token_sum(loss, student, top.indices, top.values), atol=1e-6)


def test_chunked_sum_matches_one_chunk_in_value_and_gradient():
    torch.manual_seed(1)
    head = torch.nn.Linear(8, 13, bias=False)
    hidden = torch.randn(10, 8, requires_grad=True)
    teacher = torch.randn(10, 13)
    loss = GeneralizedJSD(0.5, temperature=1.5)

    def chunk_loss(student_logits, start, end):
        return loss.token_sum(student_logits, teacher[start:end])[0]

    whole = chunked_token_sum(hidden, head, chunk_loss, chunk_size=100)
    (grad_whole,) = torch.autograd.grad(whole, hidden)
    chunked = chunked_token_sum(hidden, head, chunk_loss, chunk_size=3)
    (grad_chunked,) = torch.autograd.grad(chunked, hidden)
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert torch.allclose(grad_whole, grad_chunked, atol=1e-6)
    assert torch.allclose(whole, loss.token_sum(head(hidden), teacher)[0], atol=1e-5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="beta"):
        GeneralizedJSD(1.5)
    with pytest.raises(ValueError, match="temperature"):
        ForwardKL(temperature=0.0)
