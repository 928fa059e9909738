"""Weighted reward set over the reasoner: fills the reasoner columns, then runs each reward.

``Rewarder.score(completions, question=..., context=..., answer=..., supporting=...)`` asks the
reasoner (batched, cached) for its answer given each rationale, and for a judge score when the
``judge`` weight is non-zero, then returns every weighted component separately.
``Rewarder.trl_reward_funcs()`` exposes one TRL reward function per component (so GRPO logs
``rewards/<name>/mean`` for each) with ``weights()`` in the same order for ``reward_weights``.
A reward's parameters (its dataclass fields) are set from the ``RewardConfig`` fields of the same
name (``min_words``, ``max_words``). Rewards and reward functions are callable objects, so they
pickle whenever the reasoner does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cotdistill.methods.lm_guided.reasoner import ASPECTS, Query, Reasoner
from cotdistill.methods.lm_guided.rewards import REASONER_REWARDS, REWARDS, RewardFn, combine
from cotdistill.registry import did_you_mean


def _default_weights() -> dict[str, float]:
    return {"exact_match": 1.0, "f1": 1.0, "support": 0.5, "consistency": 0.5, "no_repetition": 0.2, "length": 0.2}


@dataclass
class RewardConfig:
    """Which rewards count and how much; components with weight 0 are not computed."""

    weights: dict[str, float] = field(
        default_factory=_default_weights,
        metadata={"help": f"reward name -> weight; names: {', '.join(REWARDS.names())}"},
    )
    min_words: int = field(default=8, metadata={"help": "length reward: fewest words without penalty"})
    max_words: int = field(default=60, metadata={"help": "length reward: most words without penalty"})
    judge_aspects: list[str] = field(
        default_factory=lambda: list(ASPECTS), metadata={"help": "aspects the reasoner rates for the judge reward"}
    )

    def __post_init__(self) -> None:
        for name in self.weights:
            if name not in REWARDS:
                raise ValueError(
                    f"unknown reward '{name}'{did_you_mean(name, REWARDS.names())} (known: {', '.join(REWARDS.names())})"
                )
        if not any(w != 0 for w in self.weights.values()):
            raise ValueError(f"at least one reward weight must be non-zero, got {self.weights}")
        if not 0 <= self.min_words <= self.max_words or self.max_words < 1:
            raise ValueError(
                f"need 0 <= min_words <= max_words and max_words >= 1, got {self.min_words}, {self.max_words}"
            )
        if "judge" in self.weights and not self.judge_aspects:
            raise ValueError("judge_aspects must name at least one aspect when the judge reward is used")


def configured(reward: RewardFn, config: RewardConfig) -> RewardFn:
    """``reward`` with each parameter (dataclass field) set from the ``config`` field of the same name."""
    if not dataclasses.is_dataclass(reward):
        return reward
    params = {f.name: getattr(config, f.name) for f in dataclasses.fields(reward) if hasattr(config, f.name)}
    return dataclasses.replace(reward, **params)


class Rewarder:
    """Computes the configured reward components for a batch of rationales."""

    def __init__(self, reasoner: Reasoner, config: RewardConfig | None = None):
        self.reasoner = reasoner
        self.config = config or RewardConfig()
        self.active = [n for n, w in self.config.weights.items() if w != 0]
        self.rewards = {name: configured(REWARDS.get(name), self.config) for name in self.active}

    def reasoner_columns(
        self, completions: Sequence[str], question: Sequence[str], context: Sequence[str]
    ) -> dict[str, list[Any]]:
        """``reasoner_answer`` (and ``judge_score`` when used) for each completion."""
        queries = [Query(q, c, r) for q, c, r in zip(question, context, completions)]
        columns: dict[str, list[Any]] = {}
        if REASONER_REWARDS & set(self.active):
            columns["reasoner_answer"] = [None if a is None else a[0] for a in self.reasoner.answer(queries)]
        if "judge" in self.active:
            columns["judge_score"] = self.reasoner.judge(queries, self.config.judge_aspects)
        return columns

    def score(self, completions: Sequence[str], **columns: Any) -> dict[str, list[float | None]]:
        """Every active component, by name: ``{name: [reward per completion]}``."""
        columns = {**columns, **self.reasoner_columns(completions, columns["question"], columns["context"])}
        return {name: reward(completions, **columns) for name, reward in self.rewards.items()}

    def total(self, components: dict[str, list[float | None]]) -> list[float]:
        return combine(components, self.config.weights)

    def weights(self) -> list[float]:
        return [self.config.weights[n] for n in self.active]

    def trl_reward_funcs(self) -> list[ComponentReward]:
        """One ``(prompts, completions, **kwargs)`` reward function per active component, named after it."""
        return [ComponentReward(self, name) for name in self.active]


class ComponentReward:
    """One component of a ``Rewarder`` as a TRL reward function; ``__name__`` is the component's name."""

    def __init__(self, rewarder: Rewarder, name: str):
        self.rewarder = rewarder
        self.__name__ = name

    def __call__(self, prompts: Sequence[str], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        texts = [_text(c) for c in completions]
        columns = {**kwargs, **self.rewarder.reasoner_columns(texts, kwargs["question"], kwargs["context"])}
        return self.rewarder.rewards[self.__name__](texts, **columns)


def _text(completion: Any) -> str:
    """TRL passes strings for plain prompts and message lists for chat prompts."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion)
