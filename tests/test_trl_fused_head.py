"""compact_fused_head: TRL's fused LM head scores only labelled positions on a CPU, with the same result."""

from __future__ import annotations

import pytest
import torch

from cotdistill.methods.trl_fused_head import compact_fused_head

trl_utils = pytest.importorskip("trl.trainer.utils")


def _patched_model() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    model = LlamaForCausalLM(config)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    return model


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 96, (3, 20), generator=generator)
    labels = input_ids.clone()
    labels[:, :14] = -100  # a long prompt, as in ReDis rows
    labels[2, 17:] = -100  # and a padded row
    return {"input_ids": input_ids, "labels": labels}


def _forward_backward(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    model.zero_grad()
    out = model(**batch, fused_lm_head=True)
    out.loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return out.loss.detach(), out.log_probs.detach(), out.entropy.detach(), grads


def _rows_scored(model: torch.nn.Module, batch: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch) -> int:
    """How many positions the head scores in one forward (rows of the hidden states it is given)."""
    rows = []
    original = trl_utils._ChunkedLogProbFunction

    class Recording:
        @staticmethod
        def apply(hidden, *args):
            rows.append(hidden.shape[0])
            return original.apply(hidden, *args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", Recording)
    model(**batch, fused_lm_head=True)
    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", original)
    return rows[0]


def test_cpu_scores_only_labelled_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    model, batch = _patched_model(), _batch()
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    assert _rows_scored(model, batch, monkeypatch) == 3 * 19  # TRL's CPU default: every shifted position
    with compact_fused_head():
        assert _rows_scored(model, batch, monkeypatch) == labelled
    assert _rows_scored(model, batch, monkeypatch) == 3 * 19  # restored after the block


def test_compact_path_gives_the_same_loss_values_and_gradients() -> None:
    model, batch = _patched_model(), _batch()
    full = _forward_backward(model, batch)
    with compact_fused_head():
        compact = _forward_backward(model, batch)
    for a, b in zip(full, compact, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert full[1][0, :13].abs().sum() == 0  # prompt positions carry zeros either way


def test_restores_the_switch_when_the_block_raises() -> None:
    original = trl_utils._use_triton
    with pytest.raises(RuntimeError), compact_fused_head():
        assert trl_utils._use_triton is not original
        raise RuntimeError("training failed")
    assert trl_utils._use_triton is original


def test_no_op_without_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(trl_utils, "_use_triton")
    with compact_fused_head():
        assert not hasattr(trl_utils, "_use_triton")
