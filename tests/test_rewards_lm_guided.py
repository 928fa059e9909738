"""Each LM-guided reward on hand-made cases, and their weighting."""

from __future__ import annotations

import math

import pytest

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.methods.lm_guided.rewarder import RewardConfig
from cotdistill.methods.lm_guided.rewards import (
    REWARDS,
    LengthBounds,
    combine,
    consistency,
    exact_match,
    f1_score,
    judge,
    no_repetition,
    support_coverage,
    token_f1,
)


def test_exact_match_uses_squad_normalisation():
    got = exact_match(
        ["r"] * 4,
        answer=["The Eiffel Tower", "Paris", "1925", "x"],
        reasoner_answer=["eiffel tower!", "London", "1925.", None],
    )
    assert got == [1.0, 0.0, 1.0, None]


def test_token_f1_partial_credit():
    assert f1_score("Ann Smith", "Ann Smith") == 1.0
    assert f1_score("Ann", "Ann Smith") == pytest.approx(2 / 3)
    assert f1_score("the", "a") == 1.0  # both normalise to nothing
    assert token_f1(["r", "r"], answer=["Ann Smith", "Bob"], reasoner_answer=["Smith Ann", "Carl"]) == [1.0, 0.0]


def test_support_coverage():
    facts = [["Ann Smith was born in Lodz.", "Film X was directed by Ann Smith."], []]
    full = "Film X was directed by Ann Smith. Ann Smith was born in Lodz. The answer is Lodz."
    assert support_coverage([full, full], supporting=facts) == [1.0, None]
    half = support_coverage(["Ann Smith was born in Lodz."], supporting=facts[:1])[0]
    assert 0.4 < half < 1.0
    assert support_coverage(["nothing relevant here"], supporting=facts[:1]) == [0.0]


def test_consistency_between_stated_and_reasoner_answer():
    completions = ["So the answer is Lodz.", "So The answer is Lodz.", "no answer stated", "The answer is Lodz."]
    got = consistency(completions, reasoner_answer=["lodz", "Paris", "lodz", None])
    assert got == [1.0, 0.0, 0.0, None]


def test_no_repetition():
    assert no_repetition(["a b c d e f"]) == [1.0]
    assert no_repetition(["x"]) == [1.0]
    looped = no_repetition(["a b c a b c a b c a b c"])[0]
    assert looped < 0.4


def test_no_repetition_sees_digit_and_punctuation_runs():
    """Degenerate rationales without spaces are repetitive too; a real year or name is not."""
    assert no_repetition(["1111111111111111111111111111"])[0] < 0.4
    assert no_repetition(["Paris . . . . . . . . . . . ."])[0] < 0.4
    assert no_repetition(["Kenthan Pedreir was born in 1919, Lemsaik Vismour in 1868."]) == [1.0]


def test_length_bounds():
    got = LengthBounds(min_words=8, max_words=60)(["w " * 4, "w " * 10, "w " * 90, "w " * 200])
    assert got == [0.5, 1.0, 0.5, 0.0]


def test_length_bounds_counts_numbers_in_chunks():
    """One unbroken digit string is not one word: it counts a word per 4 digits."""
    assert LengthBounds(min_words=8, max_words=60)(["12" * 16]) == [1.0]
    assert LengthBounds(min_words=8, max_words=60)(["born in 1919."]) == [3 / 8]


def test_judge_passes_the_rating_through():
    assert judge(["a", "b"], judge_score=[0.75, None]) == [0.75, None]


def test_every_reward_is_registered_and_ignores_extra_columns():
    assert {"exact_match", "f1", "support", "consistency", "no_repetition", "length", "judge"} <= set(REWARDS.names())
    assert REWARDS.get("length")(["w " * 10], prompts=["p"], trainer_state=None) == [1.0]


def test_combine_weights_components_and_skips_none():
    components = {"exact_match": [1.0, 0.0, None], "length": [0.5, 1.0, None], "judge": [0.2, 0.2, 0.2]}
    total = combine(components, {"exact_match": 2.0, "length": 0.5, "judge": 0.0})
    assert total[:2] == [2.25, 0.5]
    assert math.isnan(total[2])


def test_reward_config_validation():
    with pytest.raises(ConfigError, match="unknown reward 'exact'.*did you mean 'exact_match'"):
        from_dict(RewardConfig, {"weights": {"exact": 1.0}}, where="r.yaml")
    with pytest.raises(ConfigError, match="non-zero"):
        from_dict(RewardConfig, {"weights": {"f1": 0}}, where="r.yaml")
