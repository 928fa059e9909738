"""Turning multi-hop examples into what each role reads.

* the rationale model reads ``guided_example(e).question`` (context paragraphs + question) with
  ``RATIONALE_INSTRUCTION`` (``student.prompt``), in KD (SFT), RL and inference alike;
* the reasoner reads a ``Query`` (question, rendered context, optional rationale);
* rewards read the columns of ``rl_rows`` (``question``, ``context``, ``answer``, ``supporting``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from cotdistill import answers
from cotdistill.methods.lm_guided.reasoner import Query
from cotdistill.tasks import Example
from cotdistill.tasks.multihop import render_context, supporting_sentences

RATIONALE_INSTRUCTION = answers.instruction("text")
"""The rationale model's instruction in KD (SFT) and RL alike."""


def context_text(example: Example) -> str:
    """The example's ``meta["context"]`` paragraphs, one per line."""
    return render_context(example.meta.get("context", []))


def guided_example(example: Example, rationale: str | None = None) -> Example:
    """The example as the rationale model sees it: context + question (rationale optionally replaced).

    An example without ``meta["context"]`` keeps its question as is.
    """
    context = context_text(example)
    question = f"Context:\n{context}\n\nQuestion: {example.question}" if context else example.question
    return dataclasses.replace(example, question=question, rationale=rationale or example.rationale)


def query(example: Example, rationale: str | None = None) -> Query:
    return Query(example.question, context_text(example), rationale)


def rl_rows(examples: list[Example], prompt: Callable[[Example], str]) -> list[dict[str, Any]]:
    """GRPO rows: the rationale model's plain-text ``prompt(example)`` plus the columns the rewards read."""
    return [
        {
            "prompt": prompt(e),
            "question": e.question,
            "context": context_text(e),
            "answer": e.answer,
            "supporting": supporting_sentences(e.meta.get("context", []), e.meta.get("supporting_facts", [])),
        }
        for e in examples
    ]
