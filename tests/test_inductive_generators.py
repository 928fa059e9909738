"""Generators of the rule-induction domains: the known rule reproduces every pair, CoT rationales score."""

from __future__ import annotations

import random

import pytest

from cotdistill.errors import ConfigError
from cotdistill.tasks import get_task
from cotdistill.tasks.base import split_of
from cotdistill.tasks.inductive import DOMAINS, RuleError, get_domain, sample_tasks
from cotdistill.tasks.inductive.acre import NOT_BLICKET, UNKNOWN, detector, infer_statuses
from cotdistill.tasks.inductive.arc1d import denoise, fill_gap, hollow, shift
from cotdistill.tasks.inductive.miniscan import Grammar

DOMAIN_NAMES = ["acre", "arc1d", "list_functions", "miniscan"]


def test_all_domains_registered():
    assert set(DOMAIN_NAMES) <= set(DOMAINS.names())


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_true_rule_reproduces_every_pair(name):
    domain = get_domain(name)
    tasks = sample_tasks(name, 40, seed=3)
    assert len({t.idx for t in tasks}) == 40
    for task in tasks:
        assert len(task.train) == domain.n_seen and len(task.test) == domain.n_test
        for pair in task.train + task.test:
            assert task.rule.apply(pair.input) == pair.output
            assert domain.parse_output(f"Output: {pair.output}") == domain.normalize(pair.output)


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_generation_is_deterministic(name):
    first = [t.train for t in sample_tasks(name, 5, seed=1)]
    assert first == [t.train for t in sample_tasks(name, 5, seed=1)]
    assert first != [t.train for t in sample_tasks(name, 5, seed=2)]


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_perturbed_rules_are_other_rules_and_usually_fail_somewhere(name):
    domain = get_domain(name)
    rng = random.Random(0)
    wrong_somewhere = 0
    tasks = sample_tasks(name, 30, seed=5)
    for task in tasks:
        rule = domain.perturb(task, rng)
        assert rule.text != task.rule.text
        outputs = []
        for pair in task.train + task.test:
            try:
                outputs.append(rule.apply(pair.input))
            except RuleError:
                outputs.append(None)
        wrong_somewhere += outputs != [p.output for p in task.train + task.test]
    assert wrong_somewhere >= 0.7 * len(tasks)


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_cot_rationale_scores_strict_correct(name):
    task = get_task(name)
    for split in ("train", "test"):
        for example in task.examples(split, 15, seed=0):
            assert split_of(example.question) == split
            assert example.rationale.endswith(f"The answer is {example.answer}.")
            score = task.score(example.rationale, example)
            assert score.strict and score.flexible, (example.rationale, example.answer)
            assert not task.score("The answer is PURPLE [99] maybe.", example).strict


def test_cot_params_control_question_size():
    task = get_task("list_functions", {"n_seen": 2, "max_len": 3})
    example = task.examples("train", 1, seed=0)[0]
    assert example.question.count("Output:") == 2
    with pytest.raises(ConfigError, match="max_len"):
        get_task("list_functions", {"min_len": 4, "max_len": 2})
    with pytest.raises(ConfigError, match="unknown rule families"):
        get_task("arc1d", {"rules": ["teleport"]})


def test_list_function_rule_subset():
    tasks = sample_tasks("list_functions", 10, seed=0, params=get_task("list_functions", {"rules": ["reverse"]}).params)
    for task in tasks:
        assert task.rule.text == "Reverse the list."
        assert all(p.output == str(list(reversed(eval(p.input)))) for p in task.train)


def test_arc1d_primitives_on_hand_made_rows():
    assert shift([0, 3, 3, 0, 0], 2) == [0, 0, 0, 3, 3]
    assert shift([0, 3, 3, 0, 0], -1) == [3, 3, 0, 0, 0]
    assert fill_gap([0, 5, 0, 0, 5, 0]) == [0, 5, 5, 5, 5, 0]
    assert hollow([0, 2, 2, 2, 2, 0]) == [0, 2, 0, 0, 2, 0]
    assert denoise([4, 0, 4, 4, 4, 0, 0, 4]) == [0, 0, 4, 4, 4, 0, 0, 0]


def test_acre_status_inference_on_hand_made_trials():
    trials = [(["a"], True), (["b"], False), (["a", "c"], True), (["b", "d"], False)]
    statuses = infer_statuses(trials)
    assert statuses == {"a": "blicket", "b": NOT_BLICKET, "c": UNKNOWN, "d": NOT_BLICKET}
    assert detector(statuses, ["c", "a"]) == "on"
    assert detector(statuses, ["b", "d"]) == "off"
    assert detector(statuses, ["b", "c"]) == "undetermined"
    assert detector(statuses, ["zz"]) == "undetermined"
    assert infer_statuses([(["a", "c"], True)]) is None  # ambiguous cause


def test_miniscan_grammar_matches_published_example():
    # idx 0 of Qiu et al.'s scan.jsonl
    grammar = Grammar(
        primitives=(("pioff", "RED"), ("siun", "BLUE"), ("schruieff", "GREEN"), ("mckieks", "YELLOW")),
        repeat_word="mcneilt",
        repeat_count=3,
        combine_word="voinn",
        combine_pattern="aba",
        reorder_word="mcnams",
        reorder_pattern="ba",
    )
    cases = {
        "siun mcneilt": "BLUE BLUE BLUE",
        "siun voinn schruieff": "BLUE GREEN BLUE",
        "pioff mcnams siun": "BLUE RED",
        "siun mcneilt mcnams schruieff": "GREEN BLUE BLUE BLUE",
        "schruieff mcnams pioff voinn siun": "RED BLUE RED GREEN",
        "mckieks voinn schruieff mcnams pioff mcneilt": "RED RED RED YELLOW GREEN YELLOW",
    }
    for instruction, output in cases.items():
        assert grammar.interpret(instruction) == output
    with pytest.raises(RuleError):
        grammar.interpret("blorp mcneilt")
    with pytest.raises(RuleError):
        grammar.interpret("siun voinn")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("list_functions", "The rule reverses. Output: [3, 2, 1] and [4]", "[3, 2, 1]"),
        ("list_functions", "so we get [ 1,2 ,3 ]", "[1, 2, 3]"),
        ("list_functions", "no list here", None),
        ("arc1d", "The answer is [0, 4, 4].", "[0, 4, 4]"),
        ("acre", "Output: Undetermined", "undetermined"),
        ("acre", "The blicket is present, so the detector is on.", "on"),
        ("acre", "no idea", None),
        ("miniscan", "Output: red  Red BLUE", "RED RED BLUE"),
        ("miniscan", "thinking...\nGREEN GREEN", "GREEN GREEN"),
    ],
)
def test_parse_output(name, text, expected):
    assert get_domain(name).parse_output(text) == expected
