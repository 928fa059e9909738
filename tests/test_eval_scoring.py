"""Scoring hand-made predictions: self-consistency vote, chance baseline, aggregation."""

import dataclasses

import numpy as np
import pytest

from cotdistill.eval.scoring import Chance, chance_baseline, majority_vote, score_example
from cotdistill.eval.summary import chance_verdict, format_chance, summarize
from cotdistill.tasks import Example, get_task


def _example(answer: str, domain: str = "arith_shopping", i: int = 0) -> Example:
    return Example(id=f"{domain}-{i}", domain=domain, question=f"q{i}", answer=answer)


def test_majority_vote_ignores_abstentions_and_breaks_ties_by_first_seen():
    assert majority_vote(["3", None, "4", "4", None]) == "4"
    assert majority_vote(["5", "6", "6", "5"]) == "5"
    assert majority_vote([None, None]) is None


def test_self_consistency_vote_picks_majority_sample():
    task = get_task("arith_shopping")
    samples = ["2 + 2 = 5. The answer is 5.", "2 + 2 = 4. The answer is 4.", "so 4. The answer is 4.", "gibberish"]
    result = score_example(task, _example("4"), samples)
    assert result.extracted == "4" and result.extracted_strict == "4"
    assert result.strict and result.flexible
    assert result.prediction == samples[1]
    assert result.samples == samples


def test_strict_needs_answer_sentence_flexible_does_not():
    task = get_task("arith_shopping")
    result = score_example(task, _example("12"), ["First 5 + 7 = 12"])
    assert not result.strict and result.flexible
    assert result.extracted_strict is None and result.samples is None
    wrong = score_example(task, _example("12"), ["The answer is 13."])
    assert not wrong.strict and not wrong.flexible


def test_chance_baseline_only_for_closed_answer_sets():
    arith = get_task("arith_shopping")
    examples = [_example(a, i=i) for i, a in enumerate(["3", "3", "3", "5"])]
    assert chance_baseline(arith, examples) == Chance(None, None)  # open answers: n/a, not 75%
    summary = summarize({m: {"a": np.ones((1, 4))} for m in ("strict", "flexible")}, {"a": "source"}, {"a": None})
    assert summary["domains"]["a"]["chance"] is None and summary["groups"]["in_domain"]["chance"] is None
    assert "no chance baseline" in chance_verdict(summary, "in_domain", "strict")
    assert format_chance(None) == "n/a" and format_chance(0.25) == "25.0"
    choice = get_task("jsonl", {"path": "unused.jsonl", "answer_type": "choice"})
    three = [dataclasses.replace(_example(a, i=i), meta={"choices": ["x", "y", "z"]}) for i, a in enumerate("ABC")]
    assert chance_baseline(choice, three).accuracy == pytest.approx(1 / 3)
    assert chance_baseline(choice, three[:1] * 2 + three[1:2]).accuracy == pytest.approx(2 / 3)


def test_chance_baseline_majority_and_yesno_floor():
    coin = get_task("coin_flip")
    skewed = [_example("yes", "coin_flip", i) for i in range(3)] + [_example("no", "coin_flip", 9)]
    assert chance_baseline(coin, skewed).accuracy == 0.75
    balanced = [_example("yes", "coin_flip", 0), _example("no", "coin_flip", 1)]
    assert chance_baseline(coin, balanced).accuracy == 0.5


def test_summarize_groups_and_verdict():
    correct = {
        "strict": {"a": np.ones((1, 50)), "b": np.zeros((1, 50)), "c": np.ones((1, 50))},
        "flexible": {"a": np.ones((1, 50)), "b": np.ones((1, 50)), "c": np.ones((1, 50))},
    }
    roles = {"a": "source", "b": "target_near", "c": "target_far"}
    summary = summarize(correct, roles, {"a": 0.1, "b": 0.1, "c": 0.5})
    groups = summary["groups"]
    assert groups["in_domain"]["domains"] == ["a"]
    assert groups["out_of_domain"]["domains"] == ["b", "c"]
    assert groups["out_of_domain"]["strict"]["mean"] == pytest.approx(0.5)
    assert groups["out_of_domain"]["flexible"]["mean"] == pytest.approx(1.0)
    assert groups["out_of_domain"]["chance"] == pytest.approx(0.3)
    assert summary["domains"]["b"]["n"] == 50
    assert "clearly above chance" in chance_verdict(summary, "in_domain", "strict")
    assert "not above chance" in chance_verdict(summary, "target_near", "strict")
    with pytest.raises(ValueError, match="role"):
        summarize(correct, {"a": "source", "b": "target", "c": "source"}, {"a": 0, "b": 0, "c": 0})
