"""Rewards for the rationale model: callables ``(completions, **columns) -> list[float | None]``.

``completions`` are the rationales (strings); ``columns`` are per-completion lists of the same
length (``answer``, ``reasoner_answer``, ``supporting``, ``judge_score``, ...); extra columns
are ignored. ``None`` means "no reward for this completion" (e.g. the reasoner failed) and is
skipped by ``combine``, as TRL's GRPO does with its nansum.

Task rewards score the reasoner's answer *given the rationale* against the gold answer
(exact match and token F1, SQuAD-style normalisation); rationale-quality rewards score the
rationale itself. Every reward is registered in ``REWARDS`` under its name. A reward with
parameters is a frozen dataclass with ``__call__`` (picklable, unlike a closure, as in TRL's
``trl/rewards``), registered with its default parameters (the ``Rewarder`` sets them from its ``RewardConfig``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cotdistill import answers
from cotdistill.registry import Registry

RewardFn = Callable[..., list[float | None]]
REWARDS: Registry[RewardFn] = Registry("reward")

_STOPWORDS = frozenset(
    [
        "is",
        "was",
        "in",
        "of",
        "by",
        "and",
        "or",
        "a",
        "an",
        "the",
        "to",
        "for",
        "on",
        "at",
        "as",
        "it",
        "its",
        "born",
        "film",
        "company",
        "city",
    ]
)


_WORD = re.compile(r"[^\W\d_]+|\d{1,4}")
_UNIT = re.compile(r"[^\W\d_]+|\d{1,4}|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased words for the length reward: letter runs and numbers cut into chunks of <= 4 digits.

    Cutting digit runs means a degenerate ``"1111111111111111"`` counts as 4 words, not 1.
    """
    return _WORD.findall(text.lower())


def units(text: str) -> list[str]:
    """``words`` plus each punctuation mark, for the repetition reward (``"....."`` repeats)."""
    return _UNIT.findall(text.lower())


def tokens(text: str) -> list[str]:
    """SQuAD-normalised tokens (``answers.normalize_text``)."""
    return answers.normalize_text(text).split()


def f1_score(prediction: str, gold: str) -> float:
    """SQuAD token F1 between two answer strings."""
    pred, ref = tokens(prediction), tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def em_score(prediction: str, gold: str) -> float:
    return float(answers.normalize_text(prediction) == answers.normalize_text(gold))


@REWARDS.register("exact_match")
def exact_match(
    completions: Sequence[str], *, answer: Sequence[str], reasoner_answer: Sequence[str | None], **_
) -> list[float | None]:
    """1.0 when the reasoner's answer (given the rationale) equals the gold answer after normalisation."""
    return [None if r is None else em_score(r, g) for r, g in zip(reasoner_answer, answer)]


@REWARDS.register("f1")
def token_f1(
    completions: Sequence[str], *, answer: Sequence[str], reasoner_answer: Sequence[str | None], **_
) -> list[float | None]:
    """SQuAD token F1 of the reasoner's answer (given the rationale) against the gold answer."""
    return [None if r is None else f1_score(r, g) for r, g in zip(reasoner_answer, answer)]


@REWARDS.register("support")
def support_coverage(completions: Sequence[str], *, supporting: Sequence[Sequence[str]], **_) -> list[float | None]:
    """Mean over the gold supporting sentences of the fraction of their content words the rationale mentions.

    None when an example has no supporting facts (e.g. an unlabelled file).
    """
    out: list[float | None] = []
    for completion, facts in zip(completions, supporting):
        if not facts:
            out.append(None)
            continue
        said = set(tokens(completion))
        recalls = []
        for fact in facts:
            content = {t for t in tokens(fact) if t not in _STOPWORDS} or set(tokens(fact))
            recalls.append(len(content & said) / len(content) if content else 1.0)
        out.append(sum(recalls) / len(recalls))
    return out


@REWARDS.register("consistency")
def consistency(completions: Sequence[str], *, reasoner_answer: Sequence[str | None], **_) -> list[float | None]:
    """1.0 when the answer the rationale states ("The answer is X.") matches the reasoner's answer.

    A rationale that states no answer scores 0.0; a failed reasoner call gives None.
    """
    out: list[float | None] = []
    for completion, given in zip(completions, reasoner_answer):
        if given is None:
            out.append(None)
            continue
        stated = answers.extract(completion, "text", strict=True)
        out.append(0.0 if stated is None else em_score(stated, given))
    return out


@dataclass(frozen=True)
class NoRepetition:
    """Distinct n-grams of ``units`` / all n-grams (1.0 = nothing repeated; texts shorter than n score 1.0)."""

    ngram: int = 3

    def __call__(self, completions: Sequence[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for completion in completions:
            seq = units(completion)
            grams = [tuple(seq[i : i + self.ngram]) for i in range(len(seq) - self.ngram + 1)]
            out.append(len(set(grams)) / len(grams) if grams else 1.0)
        return out


@dataclass(frozen=True)
class LengthBounds:
    """1.0 inside ``[min_words, max_words]`` (``words``), decaying linearly to 0 at 0 and at twice ``max_words``."""

    min_words: int = 8
    max_words: int = 60

    def __call__(self, completions: Sequence[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for completion in completions:
            n = len(words(completion))
            if n < self.min_words:
                out.append(n / self.min_words)
            elif n > self.max_words:
                out.append(max(0.0, 1.0 - (n - self.max_words) / self.max_words))
            else:
                out.append(1.0)
        return out


no_repetition = REWARDS.register("no_repetition")(NoRepetition())
length_bounds = REWARDS.register("length")(LengthBounds())


@REWARDS.register("judge")
def judge(completions: Sequence[str], *, judge_score: Sequence[float | None], **_) -> list[float | None]:
    """The reasoner's own rating of the rationale in [0, 1] (mean over the configured aspects)."""
    return list(judge_score)


REASONER_REWARDS = frozenset({"exact_match", "f1", "consistency"})
"""Rewards that need ``reasoner_answer`` (the reasoner's answer given the rationale)."""


def combine(components: Mapping[str, Sequence[float | None]], weights: Mapping[str, float]) -> list[float]:
    """Weighted sum per completion, skipping None components (TRL's nansum); all None -> nan."""
    names = [n for n in weights if weights[n] != 0]
    size = len(next(iter(components.values()))) if components else 0
    total: list[float] = []
    for i in range(size):
        values = [weights[n] * components[n][i] for n in names if components[n][i] is not None]
        total.append(sum(values) if values else math.nan)
    return total
