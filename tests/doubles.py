"""Test doubles shared by several test modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cotdistill.teachers import CompletionRequest, CompletionResult


class ScriptedStudent:
    """A student that answers a question ``right[question]`` (else -1), the first ``samples_wrong``
    samples wrongly; records each call's prompts and precision.

    The asked question is the prompt's text before the answer instruction ("Think step by step"),
    after the last few-shot ``Q: ``.
    """

    def __init__(self, right: dict[str, str], samples_wrong: int = 0):
        self.right, self.samples_wrong = right, samples_wrong
        self.calls: list[list[str]] = []
        self.precisions: list[str] = []

    def prompt(self, question: str, instruction: str | None = None) -> str:
        return f"{question}\n{instruction}"

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        num_samples: int = 1,
        batch_size: int = 16,
        stop: Sequence[str] | None = None,
        progress: bool = True,
        precision: str = "auto",
    ) -> list[list[str]]:
        self.calls.append(list(prompts))
        self.precisions.append(precision)
        out = []
        for prompt in prompts:
            asked = prompt.split("\nThink step by step")[0].rsplit("Q: ", 1)[-1]
            good, bad = _answer(self.right.get(asked, "-1")), _answer("-1")
            texts = [bad] * self.samples_wrong + [good] * (num_samples - self.samples_wrong)
            out.append(texts[:num_samples])
        return out


def _answer(answer: str) -> str:
    return f"Working it out.\n#### {answer}\nThe answer is {answer}."


def tiny_llama(tokenizer: Any, *, heads: int = 4, max_positions: int = 128) -> Any:
    """A seeded 2-layer, 32-wide ``LlamaForCausalLM`` over ``tokenizer``'s vocabulary (2 KV heads)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


class FirstWordReasoner:
    """A reasoner backend that answers with the rationale's first word; counts requests (picklable)."""

    id = "first-word"

    def __init__(self) -> None:
        self.requests = 0

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        self.requests += len(requests)
        out = []
        for r in requests:
            text = r.messages[0]["content"]
            words = text.split("\nReasoning: ")[1].split() if "\nReasoning: " in text else []
            out.append(CompletionResult(r.key, [words[0] if words else ""] * r.n))
        return out
