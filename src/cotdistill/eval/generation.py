"""Batched sampling from a student for evaluation.

The student does the batching itself (``Student.generate``: prompts sorted by length, left
padding, KV cache, ``batch_size`` prompts per forward pass); this module fixes the contract
evaluation relies on (one list of ``num_samples`` texts per prompt, in prompt order).
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
        precision: str = "auto",
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
    precision: str = "auto",
) -> list[list[str]]:
    """``num_samples`` completions per prompt, in prompt order (``precision``: see ``cotdistill.precision``)."""
    outputs = student.generate(
        list(prompts),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        num_samples=num_samples,
        batch_size=batch_size,
        stop=list(stop) if stop else None,
        progress=False,
        precision=precision,
    )
    if len(outputs) != len(prompts) or any(len(texts) != num_samples for texts in outputs):
        raise RuntimeError(
            f"student returned {[len(t) for t in outputs]} samples for {len(prompts)} prompts x {num_samples}"
        )
    return [list(texts) for texts in outputs]
