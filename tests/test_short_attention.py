"""Short-sequence attention: the same outputs and gradients as ``sdpa``, long calls handed to ``sdpa``."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.integrations import sdpa_attention

from cotdistill.models import short_attention
from cotdistill.models.short_attention import NAME, matmul_attention, short_attention_forward, use_short_attention


class _Attention(torch.nn.Module):
    is_causal = True
    num_key_value_groups = 3  # 6 query heads over 2 key/value heads


def _qkv(q_len: int, kv_len: int, *, heads: int = 6, kv_heads: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(2, heads, q_len, 8), (2, kv_heads, kv_len, 8), (2, kv_heads, kv_len, 8)]
    return [torch.randn(s, generator=generator, requires_grad=True) for s in shapes]


def _padding_mask(q_len: int, kv_len: int) -> torch.Tensor:
    """sdpa's boolean (B, 1, Tq, Tk) mask: causal (bottom-right), row 1 left-padded by 3 tokens."""
    mask = torch.ones(q_len, kv_len, dtype=torch.bool).tril(kv_len - q_len).expand(2, 1, q_len, kv_len).clone()
    mask[1, :, :, :3] = False
    return mask


@pytest.mark.parametrize(
    ("q_len", "kv_len", "with_mask"),
    [(12, 12, False), (12, 12, True), (1, 9, False), (1, 9, True), (4, 10, False)],
    ids=["causal", "padded", "decode", "decode-padded", "prefill-after-cache"],
)
def test_matmul_attention_matches_sdpa_outputs_and_gradients(q_len, kv_len, with_mask):
    module = _Attention()
    mask = _padding_mask(q_len, kv_len) if with_mask else None
    ours_in, theirs_in = _qkv(q_len, kv_len), _qkv(q_len, kv_len)
    ours = matmul_attention(module, *ours_in, mask, scaling=0.3)
    theirs, _ = sdpa_attention.sdpa_attention_forward(module, *theirs_in, mask, scaling=0.3)
    rows = slice(None) if not with_mask or q_len == 1 else slice(3, None)  # fully masked rows: any output
    torch.testing.assert_close(ours[1, rows], theirs[1, rows], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-5)
    ours[:, rows].sum().backward()
    theirs[:, rows].sum().backward()
    for a, b in zip(ours_in, theirs_in, strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)


def test_a_fully_masked_row_stays_finite():
    mask = torch.zeros(2, 1, 5, 5, dtype=torch.bool)
    out = matmul_attention(_Attention(), *_qkv(5, 5), mask)
    assert torch.isfinite(out).all()


def test_long_sequences_and_extra_arguments_go_to_sdpa(monkeypatch):
    calls = []

    def fake_sdpa(module, query, key, value, attention_mask, **kwargs):
        calls.append(query.shape[-2])
        return query.transpose(1, 2), None

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", fake_sdpa)
    monkeypatch.setattr(short_attention, "EAGER_MAX_AREA", 100)
    module = _Attention()
    short_attention_forward(module, *_qkv(10, 10), None)  # area 100: matmuls
    short_attention_forward(module, *_qkv(11, 11), None)  # area 121: sdpa
    short_attention_forward(module, *_qkv(4, 4), None, s_aux=torch.zeros(6))  # attention sinks: sdpa
    assert calls == [11, 4]


def _llama(attn: str = "sdpa") -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation=attn,
    )
    return LlamaForCausalLM(config)


def test_a_switched_model_computes_what_sdpa_computes_and_saves_no_trace(tmp_path):
    stock = _llama()
    switched = use_short_attention(copy.deepcopy(stock))
    assert switched.config._attn_implementation == NAME
    input_ids = torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(2))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, :5] = 0  # left padding
    attention_mask[2, 12:] = 0  # right padding
    for mask in (None, attention_mask):
        theirs = stock(input_ids=input_ids, attention_mask=mask).logits
        ours = switched(input_ids=input_ids, attention_mask=mask).logits
        keep = (mask if mask is not None else torch.ones_like(input_ids)).bool()
        torch.testing.assert_close(ours[keep], theirs[keep], atol=1e-5, rtol=1e-5)
    prompt = {"input_ids": input_ids[1:2], "attention_mask": attention_mask[1:2]}
    greedy = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    assert torch.equal(switched.generate(**prompt, **greedy), stock.generate(**prompt, **greedy))
    switched.save_pretrained(tmp_path)
    assert NAME not in json.dumps(json.loads((tmp_path / "config.json").read_text()))


def test_a_model_loaded_with_another_attention_keeps_it():
    assert use_short_attention(_llama("eager")).config._attn_implementation == "eager"
