"""Which teacher samples to keep: by correctness, by self-consistency vote, or all; then dedupe.

Policies (``KeepPolicy``):

* ``correct``: keep samples whose extracted answer matches the gold answer. A question without
  a gold answer (an unlabelled target-domain question) falls back to ``majority``.
* ``majority``: keep samples whose answer is the most common answer among the question's
  samples (ties go to the answer seen first), if it has at least ``min_votes`` votes.
* ``all``: keep every sample that is not an error and not empty.

Samples that failed (``error``) or are empty are never kept. With ``dedupe``, a kept sample
whose rationale equals (after whitespace normalisation) an earlier kept one is dropped.
Every verdict comes with a short human-readable ``reason``. ``needs_all_samples`` says when a
verdict depends on the question's other samples (a vote, dedupe), so it is final only once
every sample of the question has arrived.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

KeepPolicy = Literal["correct", "majority", "all"]


@dataclass(frozen=True)
class Sample:
    """One teacher sample of one question, scored. ``correct`` is None without a gold answer."""

    index: int
    text: str
    prediction: str | None
    correct: bool | None
    error: str | None = None
    rationalized: bool = False


@dataclass(frozen=True)
class Verdict:
    kept: bool
    reason: str


def decide(
    samples: Sequence[Sample], policy: KeepPolicy, *, has_gold: bool, min_votes: int = 1, dedupe: bool = True
) -> list[Verdict]:
    """Verdicts for all samples of one question, in the order given."""
    usable = [s for s in samples if s.error is None and s.text.strip()]
    if policy == "correct" and not has_gold:
        policy = "majority"
    votes = Counter(s.prediction for s in usable if s.prediction is not None and not s.rationalized)
    winner = _winner(usable, votes)
    verdicts: list[Verdict] = []
    seen: dict[str, int] = {}
    for sample in samples:
        verdict = _judge(sample, policy, winner, votes, min_votes)
        if verdict.kept and dedupe:
            text = " ".join(sample.text.split())
            if text in seen:
                verdict = Verdict(False, f"duplicate of sample {seen[text]}")
            else:
                seen[text] = sample.index
        verdicts.append(verdict)
    return verdicts


def needs_all_samples(policy: KeepPolicy, *, has_gold: bool, dedupe: bool) -> bool:
    """True when one sample's verdict depends on the others (majority vote or dedupe)."""
    return dedupe or policy == "majority" or (policy == "correct" and not has_gold)


def _winner(usable: Sequence[Sample], votes: Counter) -> str | None:
    if not votes:
        return None
    top = max(votes.values())
    return next(s.prediction for s in usable if s.prediction is not None and votes[s.prediction] == top)


def _judge(sample: Sample, policy: KeepPolicy, winner: str | None, votes: Counter, min_votes: int) -> Verdict:
    if sample.error is not None:
        return Verdict(False, f"error: {sample.error}")
    if not sample.text.strip():
        return Verdict(False, "empty")
    if policy == "all":
        return Verdict(True, "kept (policy all)")
    if sample.prediction is None:
        return Verdict(False, "no answer found")
    suffix = " (rationalized)" if sample.rationalized else ""
    if policy == "correct":
        if sample.correct:
            return Verdict(True, f"correct{suffix}")
        return Verdict(False, f"wrong answer{suffix}")
    if sample.prediction != winner:
        return Verdict(False, f"not majority (answer {sample.prediction!r}, majority {winner!r})")
    if votes[winner] < min_votes:
        return Verdict(False, f"majority has too few votes ({votes[winner]} < {min_votes})")
    return Verdict(True, f"majority ({votes[winner]}/{sum(votes.values())} votes)")
