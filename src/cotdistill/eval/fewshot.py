"""Few-shot evaluation prompts: ``k`` solved questions of the same domain before the asked one.

A shot is ``Q: <question>`` then ``A: <rationale>`` (the gold rationale, which ends with the
answer sentence, or only the answer sentence when there is none). Shots are drawn from a pool of
labelled examples of the same domain (the suite's train split by default), with a seed derived
from the asked example's id, so the same question always gets the same shots; the asked question
itself (same text) is never among them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from cotdistill import answers
from cotdistill.tasks.base import Example, stable_seed


def solved(example: Example) -> str:
    """One shot: the question and its worked answer."""
    solution = example.rationale or answers.answer_sentence(example.answer)
    return f"Q: {example.question}\nA: {solution}"


def draw_shots(example: Example, pool: Sequence[Example], k: int) -> list[Example]:
    """Up to ``k`` labelled examples of ``pool`` other than ``example``, deterministic per example."""
    others = [e for e in pool if e.answer and e.content_hash != example.content_hash]
    return random.Random(stable_seed("eval-shots", example.id)).sample(others, min(k, len(others)))


def few_shot_question(example: Example, pool: Sequence[Example], k: int) -> str:
    """``example.question`` preceded by ``k`` solved shots (the question alone when ``k == 0``)."""
    if k == 0:
        return example.question
    shots = draw_shots(example, pool, k)
    return "\n\n".join([*(solved(s) for s in shots), f"Q: {example.question}"])
