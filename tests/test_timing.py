"""Stage times summed over resumed processes (``pipelines.timing``) and their report section."""

from __future__ import annotations

import json

import pytest

from cotdistill.pipelines.timing import StageTimes
from cotdistill.report.render import timings_section


def test_a_resumed_process_adds_to_the_saved_time_and_a_restarted_stage_starts_again(tmp_path):
    path = tmp_path / "timings.json"
    path.write_text(json.dumps({"train": 100.0, "eval": 50.0}))
    times = StageTimes(path, restart=["eval"])
    with times.measure("train"):
        pass
    with times.measure("eval"):
        pass
    saved = json.loads(path.read_text())
    assert 100.0 <= saved["train"] < 101.0
    assert saved["eval"] < 1.0
    assert times.total() == pytest.approx(saved["train"] + saved["eval"], abs=0.02)


def test_a_failing_stage_keeps_the_time_it_ran(tmp_path):
    path = tmp_path / "timings.json"
    times = StageTimes(path)
    with pytest.raises(RuntimeError), times.measure("train"):
        raise RuntimeError("killed")
    assert "train" in json.loads(path.read_text())
    assert StageTimes(path).seconds.keys() == {"train"}


def test_the_section_lists_each_stage_then_the_total():
    lines = "\n".join(timings_section({"train": 90.0, "eval": 30.0}))
    assert "| train | 90.0 | 1.5 |" in lines and "| total | 120.0 | 2.0 |" in lines
    assert timings_section({}) == []
