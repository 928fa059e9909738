"""The decode loop that drops finished rows: greedy equals transformers' ``generate``, batched rows
equal single prompts (Llama and a sliding-window Gemma-3), nucleus sampling keeps the top set."""

from __future__ import annotations

import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from cotdistill.models.decode import DecodeSettings, decode, next_tokens
from cotdistill.models.generation import GenerationEngine, Sampling, left_pad
from doubles import tiny_llama
from test_generation_engine import tiny_tokenizer

PROMPTS = ("Tom has 3 apples and buys", "Flip", "The answer is 7. Tom buys 4 more apples and")


def tiny_gemma3(tokenizer) -> Gemma3ForCausalLM:
    """A seeded 2-layer Gemma-3 whose first layer attends over a 4-token sliding window."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return Gemma3ForCausalLM(config).eval()


def left_padded(tokenizer, prompts):
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    return (ids, *left_pad(ids, tokenizer.pad_token_id))


def test_greedy_decode_equals_transformers_generate():
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer).eval()
    _, input_ids, mask = left_padded(tokenizer, PROMPTS)
    reference = model.generate(
        input_ids=input_ids, attention_mask=mask, max_new_tokens=10, do_sample=False, eos_token_id=[], pad_token_id=0
    )[:, input_ids.shape[1] :]
    rows = decode(model, mask, DecodeSettings(max_new_tokens=10, eos_ids=frozenset()), input_ids=input_ids)
    assert rows == reference.tolist()


def test_a_row_that_ends_early_leaves_the_others_unchanged_with_a_sliding_window_cache():
    tokenizer = tiny_tokenizer()
    for model in (tiny_llama(tokenizer).eval(), tiny_gemma3(tokenizer)):
        ids, input_ids, mask = left_padded(tokenizer, PROMPTS)
        free = decode(model, mask, DecodeSettings(max_new_tokens=12, eos_ids=frozenset()), input_ids=input_ids)
        stop_at = free[1][2]  # the second row's third token ends that row early
        ended = decode(
            model, mask, DecodeSettings(max_new_tokens=12, eos_ids=frozenset({stop_at})), input_ids=input_ids
        )
        for row, full in zip(ended, free):
            cut = full.index(stop_at) + 1 if stop_at in full else len(full)
            assert row == full[:cut]
        assert len(ended[1]) <= 3 < len(max(ended, key=len))
        engine = GenerationEngine(model, tokenizer)
        single = [engine.generate_batch([r], Sampling(max_new_tokens=12)) for r in ids]
        assert engine.generate(ids, Sampling(max_new_tokens=12), batch_size=3) == [s[0] for s in single]


def test_sampled_rows_are_prompt_major_and_seeded():
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer).eval()
    _, input_ids, mask = left_padded(tokenizer, PROMPTS[:2])
    settings = DecodeSettings(max_new_tokens=6, eos_ids=frozenset(), temperature=1.0, n=3)
    torch.manual_seed(1)
    first = decode(model, mask, settings, input_ids=input_ids)
    torch.manual_seed(1)
    assert decode(model, mask, settings, input_ids=input_ids) == first
    assert len(first) == 6 and all(len(r) == 6 for r in first)
    greedy = decode(model, mask, DecodeSettings(max_new_tokens=6, eos_ids=frozenset(), n=3), input_ids=input_ids)
    assert greedy[0] == greedy[1] == greedy[2] and greedy[3] == greedy[4] == greedy[5]


def test_nucleus_sampling_keeps_only_the_smallest_set_reaching_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    torch.manual_seed(0)
    drawn = next_tokens(logits, temperature=1.0, top_p=0.8)
    assert set(drawn.tolist()) == {0, 1}
    assert 0.55 < (drawn == 0).float().mean().item() < 0.70  # 0.5 / 0.8 after renormalising
    assert set(next_tokens(logits, temperature=1.0, top_p=0.01).tolist()) == {0}
    assert next_tokens(logits[:1], temperature=0.0, top_p=1.0).tolist() == [0]
