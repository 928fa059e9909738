"""Procedural generators: oracle rationales score strict-correct, splits are disjoint, knobs work."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cotdistill import answers
from cotdistill.errors import ConfigError
from cotdistill.tasks import SPLITS, TASKS, ProceduralTask, get_task
from cotdistill.tasks.base import split_of
from cotdistill.tasks.words import NAMES

MINE = ["arith_shopping", "arith_cooking", "arith_travel", "arith_sport", "arith_chain", "last_letter", "coin_flip"]
ARITH_WORDS = ["arith_shopping", "arith_cooking", "arith_travel", "arith_sport"]


def _rationale_tasks() -> list[str]:
    return [n for n in TASKS.names() if issubclass(TASKS.get(n), ProceduralTask) and TASKS.get(n).has_rationale]


@pytest.mark.parametrize("name", MINE)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_oracle_rationale_is_strict_correct(name: str, seed: int) -> None:
    task = get_task(name)
    for example in task.stream(seed):
        score = task.score(example.rationale, example)
        assert score.strict and score.flexible, (example.question, example.rationale, example.answer, score)
        assert example.rationale.endswith(answers.answer_sentence(example.answer))
        break


@pytest.mark.parametrize("name", MINE)
def test_oracle_rationales_over_a_batch(name: str) -> None:
    task = get_task(name)
    for example in task.examples("train", 150, seed=7):
        assert task.score(example.rationale, example).strict, example


def test_every_registered_rationale_task_is_strict_correct() -> None:
    names = _rationale_tasks()
    assert set(MINE) <= set(names)
    for name in names:
        task = get_task(name)
        for example in task.examples("dev", 10, seed=3):
            assert task.score(example.rationale, example).strict, (name, example)


@pytest.mark.parametrize("name", MINE)
def test_wrong_answers_do_not_score(name: str) -> None:
    task = get_task(name)
    for example in task.examples("test", 30, seed=1):
        kind = task.answer_type.value
        if kind == "number":
            wrong = str(int(example.answer) + 1)
        elif kind == "yesno":
            wrong = "no" if example.answer == "yes" else "yes"
        else:
            wrong = example.answer + "x"
        assert not task.score(answers.answer_sentence(wrong), example).strict


@pytest.mark.parametrize("name", MINE)
def test_splits_disjoint_deterministic_and_hash_assigned(name: str) -> None:
    task = get_task(name)
    splits = {split: task.examples(split, n, seed=5) for split, n in zip(SPLITS, (200, 40, 40))}
    hashes = {split: {e.content_hash for e in examples} for split, examples in splits.items()}
    assert all(len(hashes[s]) == len(splits[s]) for s in SPLITS)  # no repeats within a split
    assert not hashes["train"] & hashes["dev"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["dev"] & hashes["test"]
    for split, examples in splits.items():
        assert all(split_of(e.question) == split and e.domain == name for e in examples)
    assert task.examples("dev", 40, seed=5) == splits["dev"]
    assert task.examples("dev", 40, seed=6) != splits["dev"]


@pytest.mark.parametrize("name", MINE)
def test_short_questions_and_rationales_for_default_params(name: str) -> None:
    examples = get_task(name).examples("train", 200, seed=2)
    assert max(len(e.question.split()) for e in examples) <= 50
    assert max(len(e.rationale.split()) for e in examples) <= 30
    assert len({e.question for e in examples}) == 200


def test_word_problem_domains_share_the_skill_but_not_the_vocabulary() -> None:
    vocab = {}
    for name in ARITH_WORDS:
        examples = get_task(name).examples("train", 200, seed=0)
        for e in examples:  # same skill: every rationale is a chain of + - * equations
            assert re.fullmatch(r"(\d+ [-+*] \d+ = \d+\. )+The answer is \d+\.", e.rationale), e.rationale
        words = {w.strip(".,?").removesuffix("'s") for e in examples for w in e.question.split()}
        vocab[name] = {w.lower() for w in words if w not in NAMES and not w.isdigit()}
    for a in ARITH_WORDS:
        for b in ARITH_WORDS:
            if a < b:
                overlap = len(vocab[a] & vocab[b]) / len(vocab[a] | vocab[b])
                assert overlap < 0.5, (a, b, overlap)


def test_difficulty_knobs_change_the_problems() -> None:
    long = get_task("arith_chain", {"min_steps": 5, "max_steps": 5}).examples("train", 30, seed=0)
    assert all(e.meta["steps"] == 5 and e.rationale.count("=") == 5 for e in long)
    words = get_task("last_letter", {"min_words": 5, "max_words": 5}).examples("train", 30, seed=0)
    assert all(len(e.answer) == 5 for e in words)
    coins = get_task("coin_flip", {"min_people": 6, "max_people": 6}).examples("train", 30, seed=0)
    assert all(e.question.count(".") == 7 for e in coins)
    big = get_task("arith_shopping", {"max_number": 50, "min_steps": 3, "max_steps": 3}).examples("train", 50, seed=0)
    assert max(int(n) for e in big for n in re.findall(r"\d+", e.question)) > 20
    assert all(e.meta["steps"] == 3 for e in big)


def test_coin_flip_answer_matches_parity_of_flips() -> None:
    for example in get_task("coin_flip").examples("train", 100, seed=4):
        flips = example.rationale.count(" flips:")
        assert example.answer == ("yes" if flips % 2 == 0 else "no")


def test_last_letter_answer_is_the_last_letters() -> None:
    for example in get_task("last_letter").examples("train", 100, seed=4):
        words = re.search(r'"([^"]+)"', example.question).group(1).split()
        assert example.answer == "".join(w[-1].lower() for w in words)


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("arith_chain", {"max_steps": 1}, "max_steps"),
        ("arith_sport", {"max_number": 1}, "max_number"),
        ("arith_cooking", {"multiply_prob": 1.5}, "multiply_prob"),
        ("last_letter", {"min_words": 0}, "min_words"),
        ("coin_flip", {"flip_prob": -0.1}, "flip_prob"),
        ("coin_flip", {"max_people": "four"}, "max_people"),
        ("arith_travel", {"max_stepz": 3}, "max_steps"),
    ],
)
def test_bad_params_are_config_errors_naming_the_key(name: str, params: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        get_task(name, params)


def test_too_few_distinct_examples_is_a_clear_error() -> None:
    task = get_task("coin_flip", {"min_people": 1, "max_people": 1})
    with pytest.raises(ConfigError, match="distinct"):
        task.examples("dev", 100, seed=0)


def test_generate_is_deterministic_for_an_rng() -> None:
    task = get_task("arith_shopping")
    assert task.generate(random.Random(3)) == task.generate(random.Random(3))


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["arith_shopping", "arith_cooking", "arith_travel", "arith_sport", "arith_chain"]),
    min_steps=st.integers(1, 4),
    extra=st.integers(0, 3),
    max_number=st.integers(2, 40),
    multiply_prob=st.floats(0, 1),
    seed=st.integers(0, 10**6),
)
def test_arithmetic_rationales_correct_for_any_valid_params(name, min_steps, extra, max_number, multiply_prob, seed):
    params = {
        "min_steps": min_steps,
        "max_steps": min_steps + extra,
        "max_number": max_number,
        "multiply_prob": multiply_prob,
    }
    task = get_task(name, params)
    for example in itertools.islice(task.stream(seed), 5):
        assert task.score(example.rationale, example).strict, example
        assert int(example.answer) >= 0
        assert min_steps <= example.meta["steps"] <= min_steps + extra


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["last_letter", "coin_flip"]),
    low=st.integers(1, 6),
    extra=st.integers(0, 4),
    seed=st.integers(0, 10**6),
)
def test_symbolic_rationales_correct_for_any_valid_params(name: str, low: int, extra: int, seed: int) -> None:
    keys = ("min_words", "max_words") if name == "last_letter" else ("min_people", "max_people")
    task = get_task(name, {keys[0]: low, keys[1]: low + extra})
    for example in itertools.islice(task.stream(seed), 5):
        assert task.score(example.rationale, example).strict, example
