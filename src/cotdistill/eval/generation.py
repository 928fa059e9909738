"""Batched sampling from a student for evaluation.

Prompts are sorted by length before batching (so a batch pads little) and the outputs are
returned in the original order. The student does the batching itself (``Student.generate``:
left padding, KV cache, ``batch_size`` prompts per forward pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Generator(Protocol):
    """The part of ``cotdistill.models.Student`` evaluation uses."""

    def prompt(self, question: str, instruction: str | None = None) -> str: ...

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
    ) -> list[list[str]]: ...


def generate_samples(
    student: Generator,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    num_samples: int = 1,
    batch_size: int = 16,
    stop: Sequence[str] | None = None,
) -> list[list[str]]:
    """``num_samples`` completions per prompt, in prompt order (length-sorted batches inside)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    outputs = student.generate(
        [prompts[i] for i in order],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        num_samples=num_samples,
        batch_size=batch_size,
        stop=list(stop) if stop else None,
        progress=False,
    )
    if len(outputs) != len(prompts):
        raise RuntimeError(f"student returned {len(outputs)} outputs for {len(prompts)} prompts")
    result: list[list[str]] = [[] for _ in prompts]
    for position, index in enumerate(order):
        result[index] = list(outputs[position])
    return result
