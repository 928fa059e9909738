"""Score generated samples with a task's scorer: self-consistency vote, per-example records, chance.

With ``k`` samples per question the strict and flexible answers are each the majority vote over
the samples' extracted answers (samples with no extractable answer abstain; ties go to the
answer seen first). With one sample this is exactly ``task.score``.

Number answers are also scored with lm-evaluation-harness's two GSM8K filters
(``metrics``: ``gsm8k_strict_match``, ``gsm8k_flexible_extract``) on the first sample, as the
harness scores one generation. An example's ``meta["type"]`` (ACRE's query type, a multi-hop
question type) is kept as ``type`` so accuracy can be reported per type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.tasks.base import Example, Task


@dataclass(frozen=True)
class ExampleResult:
    """The outcome for one question.

    ``prediction`` is the full text of the sample that carries the voted (flexible) answer, or
    the first sample when no sample has one; ``samples`` holds every sample when ``k > 1``.
    """

    id: str
    domain: str
    question: str
    gold: str
    prediction: str
    extracted: str | None
    extracted_strict: str | None
    strict: bool
    flexible: bool
    samples: list[str] | None = None
    metrics: dict[str, bool] | None = None
    type: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k not in _OPTIONAL}


_OPTIONAL = ("samples", "metrics", "type")


def majority_vote(values: Sequence[str | None]) -> str | None:
    """Most common non-None value; ties go to the value that appears first; None if all abstain."""
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(v for v in values if v is not None and counts[v] == best)


def score_example(task: Task, example: Example, samples: Sequence[str]) -> ExampleResult:
    """Score one question's samples (``len(samples) >= 1``) with the task's scorer and vote."""
    if not samples:
        raise ValueError(f"example {example.id}: no samples to score")
    scores = [task.score(text, example) for text in samples]
    flexible_answer = majority_vote([s.extracted for s in scores])
    strict_answer = majority_vote([s.extracted_strict for s in scores])
    flexible = next((s.flexible for s in scores if s.extracted == flexible_answer), False)
    strict = next((s.strict for s in scores if s.extracted_strict == strict_answer), False)
    chosen = next((i for i, s in enumerate(scores) if s.extracted == flexible_answer), 0)
    return ExampleResult(
        id=example.id,
        domain=example.domain,
        question=example.question,
        gold=example.answer,
        prediction=samples[chosen],
        extracted=flexible_answer,
        extracted_strict=strict_answer,
        strict=bool(strict and strict_answer is not None),
        flexible=bool(flexible and flexible_answer is not None),
        samples=list(samples) if len(samples) > 1 else None,
        metrics=answers.harness_gsm8k(samples[0], example.answer) if task.answer_type == AnswerType.NUMBER else None,
        type=str(example.meta["type"]) if example.meta.get("type") is not None else None,
    )


@dataclass(frozen=True)
class Chance:
    """The majority-answer baseline of a test split: always answering ``answer`` scores ``accuracy``.

    ``accuracy`` is None for open answer sets (numbers, text, lists).
    """

    answer: str | None
    accuracy: float | None


CLOSED = (AnswerType.YESNO, AnswerType.LABEL, AnswerType.CHOICE)


def chance_baseline(task: Task, examples: Sequence[Example]) -> Chance:
    """Accuracy of always giving the split's most common (normalised) gold answer, for closed answer sets.

    It is at least uniform guessing among each question's options (labels, yes/no, choices).
    This is an optimistic constant predictor, so "above chance" against it is a strict claim.
    Open answers (numbers, text, lists) have no chance baseline.
    """
    if not examples:
        raise ValueError("chance baseline of an empty split")
    if task.answer_type not in CLOSED:
        return Chance(None, None)
    gold = [answers.normalize(e.answer, task.answer_type, task.labels) for e in examples]
    counts = Counter(g for g in gold if g is not None)
    if not counts:
        return Chance(None, 0.0)
    answer, count = counts.most_common(1)[0]
    return Chance(answer, max(count / len(examples), _uniform(task, examples)))


def _uniform(task: Task, examples: Sequence[Example]) -> float:
    """Expected accuracy of guessing uniformly among each question's options."""
    if task.labels:
        return 1.0 / len(task.labels)
    if task.answer_type == AnswerType.YESNO:
        return 0.5
    sizes = [len(e.meta["choices"]) for e in examples if e.meta.get("choices")]
    return sum(1.0 / n for n in sizes) / len(examples) if sizes else 0.0
