"""``benchmarks/lm_guided_copying.py``: what the reasoner copies from the rationales it is given."""

from __future__ import annotations

import pytest

from bench_modules import benchmark_module


def _copying():
    return benchmark_module("lm_guided_copying")


def _example(condition, kind, gold, greedy, rationale, idx="q"):
    return {"id": idx, "condition": condition, "type": kind, "gold": gold, "greedy": greedy, "rationale": rationale}


def test_the_table_separates_the_rationales_answer_from_the_reasoners():
    examples = [
        _example("reasoner alone", "bridge", "Paris", "Paris", None),  # no rationale: not counted
        _example("KD", "bridge", "Paris", "Paris", "It is in France. The answer is Paris."),  # copied, right
        _example("KD", "bridge", "Paris", "Lyon", "The answer is Paris."),  # right rationale, reasoner deviates
        _example("KD", "comparison", "yes", "no", "The answer is no."),  # copied, wrong
        _example("KD", "comparison", "yes", "yes", "Both are old."),  # states nothing
    ]
    table = _copying().copying_table(examples)
    assert set(table) == {"KD"}
    assert list(table["KD"]) == ["bridge", "comparison", "all"]
    overall = table["KD"]["all"]
    assert overall["n"] == 4
    assert overall["reasoner_em"] == pytest.approx(50.0)
    assert overall["stated_em"] == pytest.approx(50.0)
    assert overall["copies"] == pytest.approx(50.0)
    assert overall["stated"] == pytest.approx(75.0)
    assert table["KD"]["bridge"]["copies"] == pytest.approx(50.0)
    assert "| KD | all | 4 | 50.0 | 50.0 | 50.0 | 75.0 |" in _copying().markdown(table)


def test_the_stated_difference_pairs_questions_by_id():
    copying = _copying()
    kd, rl = copying.KD, copying.RL
    examples = [
        _example(kd, "bridge", "Paris", "", "The answer is Lyon.", "q1"),
        _example(rl, "bridge", "Paris", "", "The answer is Paris.", "q1"),  # RL right where KD was wrong
        _example(rl, "bridge", "Rome", "", "The answer is Rome.", "q2"),  # both right
        _example(kd, "bridge", "Rome", "", "The answer is Rome.", "q2"),
        _example(kd, "bridge", "Oslo", "", "The answer is Oslo.", "q3"),  # only KD has it: left out
    ]
    difference = copying.stated_difference(examples, rl, kd)
    assert difference.mean == pytest.approx(0.5)
    assert difference.low <= 0.5 <= difference.high
