"""Paired differences of the ReDis report: the same queries, averaged over search seeds."""

from __future__ import annotations

import pytest

from cotdistill.methods.redis import TaskResult
from cotdistill.pipelines.redis_report import paired_differences


def _result(task: str, domain: str, correct: list[bool]) -> TaskResult:
    return TaskResult(task, domain, ["x" if c else "y" for c in correct], ["x"] * len(correct))


def test_differences_pair_queries_by_task_and_average_the_seeds():
    sft = [
        [_result("a-1", "a", [True, True]), _result("b-1", "b", [True, False])],
        [_result("a-1", "a", [True, False]), _result("b-1", "b", [True, False])],
    ]
    # the baseline lists its tasks in another order: pairing goes by task and query, not position
    base = [[_result("b-1", "b", [False, False]), _result("a-1", "a", [True, True])]]
    paired = paired_differences({"redis_sft": sft, "hs_base": base}, ["a", "b"], seed=0)
    assert list(paired) == ["redis_sft - hs_base"]
    # domain a: (1 - 1 + 0.5 - 1) / 2 = -0.25; domain b: (1 - 0 + 0 - 0) / 2 = 0.5; macro 0.125
    diff = paired["redis_sft - hs_base"]
    assert diff["mean"] == pytest.approx(0.125)
    assert diff["low"] <= diff["mean"] <= diff["high"]


def test_a_pair_with_a_missing_method_is_left_out():
    rows = [[_result("a-1", "a", [True])]]
    assert paired_differences({"redis_sft": rows, "redis_orpo": rows}, ["a"], seed=0) == {
        "redis_orpo - redis_sft": {"mean": 0.0, "low": 0.0, "high": 0.0}
    }
