"""Few-shot chain-of-thought prompts for the teacher, in chat and plain form.

A prompt is built per domain from the task's ``answer_instruction`` (so answers land where the
domain's extractor looks) and a few of that domain's training examples with their rationales
as worked shots. ``hint`` (STaR rationalisation) tells the teacher the correct answer and asks
for the reasoning that reaches it.

Chat form: a system message with the instruction, then one user/assistant turn per shot, then
the question. Plain form (completion endpoints, base models)::

    <instruction>

    Question: <shot question>
    Answer: <shot rationale>

    Question: <question>
    Answer:

with ``PLAIN_STOP`` ending the completion before the teacher invents the next question.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cotdistill.tasks.base import Example, stable_seed

PromptStyle = Literal["chat", "plain"]
PLAIN_STOP = ["\nQuestion:"]
DEFAULT_SYSTEM = "You are an expert problem solver. Solve each problem step by step. {instruction}"


@dataclass(frozen=True)
class Prompt:
    """A rendered teacher prompt: exactly one of ``prompt``/``messages``, its hash and stop strings."""

    prompt: str | None
    messages: list[dict[str, str]] | None
    stop: list[str] | None
    hash: str


def hint_text(answer: str) -> str:
    """The rationalisation hint appended to a question (STaR)."""
    return f"(Hint: the correct answer is {answer}. Explain step by step how to reach it without mentioning the hint.)"


def build_prompt(
    question: str,
    instruction: str,
    shots: Sequence[Example] = (),
    *,
    style: PromptStyle = "chat",
    system: str = DEFAULT_SYSTEM,
    hint: str | None = None,
) -> Prompt:
    """Render the few-shot prompt for one question; ``hint`` is the gold answer to rationalise."""
    header = system.format(instruction=instruction).strip()
    target = question.strip() if hint is None else f"{question.strip()}\n{hint_text(hint)}"
    worked = [(shot.question.strip(), (shot.rationale or "").strip()) for shot in shots]
    if style == "chat":
        messages = [{"role": "system", "content": header}]
        for shot_question, shot_rationale in worked:
            messages.append({"role": "user", "content": shot_question})
            messages.append({"role": "assistant", "content": shot_rationale})
        messages.append({"role": "user", "content": target})
        return Prompt(None, messages, None, _hash({"messages": messages}))
    blocks = [header] + [f"Question: {q}\nAnswer: {r}" for q, r in worked] + [f"Question: {target}\nAnswer:"]
    text = "\n\n".join(blocks)
    return Prompt(text, None, list(PLAIN_STOP), _hash({"prompt": text}))


def shot_candidates(pool: Sequence[Example], num_shots: int, *, seed: int = 0) -> list[Example]:
    """The ``num_shots + 1`` first examples with rationales in a fixed seeded order of ``pool``.

    One more than needed, so a question that is itself a candidate can be replaced.
    """
    if num_shots <= 0:
        return []
    candidates = [e for e in pool if e.rationale and e.rationale.strip()]
    candidates.sort(key=lambda e: stable_seed(seed, e.id))
    return candidates[: num_shots + 1]


def select_shots(candidates: Sequence[Example], num_shots: int, *, exclude_id: str) -> list[Example]:
    """Every question of a domain sees the same shots, never itself (``shot_candidates`` order)."""
    if num_shots <= 0:
        return []
    return [e for e in candidates if e.id != exclude_id][:num_shots]


def _hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
