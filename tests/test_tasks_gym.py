"""reasoning-gym domains: registered, deterministic, disjoint splits, scored by the gym's verifier."""

from __future__ import annotations

import json

import pytest

from cotdistill import answers
from cotdistill.errors import ConfigError
from cotdistill.tasks import SPLITS, TASKS, get_task
from cotdistill.tasks.gym import GYM_DOMAINS

GYM_NAMES = [f"gym_{d.gym_name}" for d in GYM_DOMAINS]


def test_gym_domains_are_registered_without_rationales() -> None:
    assert len(GYM_NAMES) >= 8
    for name in GYM_NAMES:
        cls = TASKS.get(name)
        assert not cls.has_rationale and cls.source == "reasoning-gym"


@pytest.mark.parametrize("name", GYM_NAMES)
def test_gym_splits_disjoint_deterministic_and_gold_scores(name: str) -> None:
    task = get_task(name)
    splits = {split: task.examples(split, n, seed=0) for split, n in zip(SPLITS, (12, 4, 4))}
    hashes = [{e.content_hash for e in splits[s]} for s in SPLITS]
    assert [len(h) for h in hashes] == [12, 4, 4]
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])
    assert task.examples("test", 4, seed=0) == splits["test"]
    for example in splits["test"]:
        json.dumps(example.to_dict())  # meta (the gym's metadata) is plain JSON
        assert example.rationale is None and example.answer
        gold = task.score("Working it out. " + answers.answer_sentence(example.answer), example)
        assert gold.strict and gold.flexible, (example.question, example.answer, gold)
        assert not task.score("The answer is 987654321.", example).strict
        assert not task.score("I am not sure.", example).strict


def test_gym_flexible_score_without_answer_sentence() -> None:
    task = get_task("gym_chain_sum")
    example = task.examples("dev", 1, seed=1)[0]
    score = task.score(f"so the total is {example.answer}", example)
    assert score.flexible and not score.strict
    assert score.extracted_strict is None


def test_gym_config_overrides_reach_reasoning_gym() -> None:
    task = get_task("gym_chain_sum", {"config": {"min_terms": 5, "max_terms": 5, "max_digits": 1}})
    for example in task.examples("train", 5, seed=0):
        assert example.meta["gym"]["num_terms"] == 5


def test_gym_bad_config_is_a_config_error() -> None:
    task = get_task("gym_chain_sum", {"config": {"no_such_field": 1}})
    with pytest.raises(ConfigError, match="gym_chain_sum"):
        task.examples("train", 1, seed=0)
