"""``benchmarks/lm_guided_copying.py``: what the reasoner copies from the rationales it is given."""

from __future__ import annotations

import pytest

from bench_modules import benchmark_module


def _copying():
    return benchmark_module("lm_guided_copying")


def _example(condition, kind, gold, greedy, rationale):
    return {"condition": condition, "type": kind, "gold": gold, "greedy": greedy, "rationale": rationale}


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
