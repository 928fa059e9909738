"""One short GRPO run of a tiny rationale model against a scripted reasoner (KL to the KD model)."""

from __future__ import annotations

import json

import pytest
import torch

from cotdistill.methods.lm_guided.reasoner import Reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rl import RLConfig, train_grpo
from cotdistill.tasks import get_task
from cotdistill.tasks.multihop import render_context, supporting_sentences
from doubles import FirstWordReasoner, tiny_llama


def tiny_model_and_tokenizer(corpus: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    return tiny_llama(tokenizer, heads=2, max_positions=2048), tokenizer


def multihop_rows(n: int) -> tuple[list[dict], list[str]]:
    """GRPO rows for ``n`` multi-hop questions, and their gold rationales (tokenizer corpus)."""
    examples = get_task("multihop").examples("train", n, seed=0)
    rows = [
        {
            "prompt": f"Context: {render_context(e.meta['context'])} Question: {e.question} Answer:",
            "question": e.question,
            "context": render_context(e.meta["context"]),
            "answer": e.answer,
            "supporting": supporting_sentences(e.meta["context"], e.meta["supporting_facts"]),
        }
        for e in examples
    ]
    return rows, [e.rationale for e in examples]


def two_step_config(**overrides) -> RLConfig:
    """Two GRPO steps of 2 prompts x 2 rationales of at most 12 tokens, at lr 1e-3."""
    settings = {
        "max_steps": 2,
        "prompts_per_step": 2,
        "num_generations": 2,
        "max_completion_length": 12,
        "lr": 1e-3,
        "save_steps": 2,
        "mask_truncated_completions": False,  # a 12-token tiny model rarely stops on its own
    }
    return RLConfig(**{**settings, **overrides})


def test_grpo_step_logs_every_reward_component(tmp_path):
    rows, rationales = multihop_rows(4)
    model, tokenizer = tiny_model_and_tokenizer([r["prompt"] + " " + t for r, t in zip(rows, rationales)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    backend = FirstWordReasoner()
    weights = {"exact_match": 1.0, "f1": 1.0, "support": 0.5, "no_repetition": 0.2, "length": 0.2}
    rewarder = Rewarder(Reasoner(backend), RewardConfig(weights=weights, min_words=4, max_words=12))
    trained = train_grpo(model, tokenizer, rows, rewarder, two_step_config(), tmp_path)

    assert backend.requests > 0
    assert (tmp_path / "reference" / "config.json").exists()  # the KL reference = the starting (KD) model
    log = [json.loads(line) for line in (tmp_path / "reward_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2]
    for row in log:
        assert set(weights) <= set(row)
        assert all(row[name] is not None for name in weights)
        assert "kl" in row and 0.0 <= row["frac_reward_zero_std"] <= 1.0
    assert log[-1]["learning_rate"] == pytest.approx(1e-3)  # constant after the warm-up step
    changed = any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())
    assert changed


def test_rl_config_rejects_a_group_of_one():
    with pytest.raises(ValueError, match="num_generations"):
        RLConfig(num_generations=1)


def test_rl_config_rejects_an_unknown_reward_scaling():
    with pytest.raises(ValueError, match="scale_rewards"):
        RLConfig(scale_rewards="std")
