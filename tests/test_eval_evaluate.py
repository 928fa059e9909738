"""``evaluate`` end to end with a scripted student: report files, groups, resume, self-consistency."""

import json

import pytest

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.eval import EvalConfig, evaluate
from cotdistill.report.render import render_eval
from cotdistill.tasks import get_task
from doubles import ScriptedStudent


def _data():
    shop, travel, coin = get_task("arith_shopping"), get_task("arith_travel"), get_task("coin_flip")
    return {
        "arith_shopping": shop.examples("test", 12, 0),
        "arith_travel": travel.examples("test", 10, 0),
        "coin_flip": coin.examples("test", 8, 0),
    }, {"arith_shopping": "source", "arith_travel": "target_near", "coin_flip": "target_far"}


def _student(data, fraction_right):
    right = {}
    for examples in data.values():
        for e in examples[: int(len(examples) * fraction_right)]:
            right[e.question] = e.answer
    return ScriptedStudent(right)


def test_evaluate_writes_reports_and_resumes(tmp_path):
    data, roles = _data()
    student = _student(data, 0.5)
    cfg = EvalConfig(batch_size=4, chunk_size=5, bootstrap_resamples=200)
    report = evaluate(student, data, roles, cfg, tmp_path, meta={"checkpoint": "scripted"}, show_progress=False)
    domains = report["summary"]["domains"]
    assert domains["arith_shopping"]["strict"]["mean"] == pytest.approx(0.5)
    assert domains["arith_travel"]["n"] == 10 and domains["coin_flip"]["role"] == "target_far"
    assert set(report["summary"]["groups"]) == {"in_domain", "out_of_domain", "target_near", "target_far"}
    on_disk = json.loads((tmp_path / "report.json").read_text())
    row = on_disk["examples"]["arith_shopping"][0]
    assert row["strict"] and row["extracted"] == row["gold"] and "prediction" in row
    markdown = render_eval(report)
    assert "| arith_shopping | source | 12 |" in markdown and "chance" in markdown
    assert sum(map(len, student.calls)) == 30

    again = _student(data, 0.5)
    evaluate(again, data, roles, cfg, tmp_path, meta={"checkpoint": "scripted"}, show_progress=False)
    assert again.calls == []  # every prediction reused

    other = _student(data, 1.0)
    result = evaluate(other, data, roles, cfg, tmp_path, meta={"checkpoint": "other"}, show_progress=False)
    assert sum(map(len, other.calls)) == 30  # another checkpoint: evaluated afresh
    assert result["summary"]["groups"]["in_domain"]["strict"]["mean"] == 1.0

    pinned = _student(data, 1.0)
    fp32 = EvalConfig(batch_size=4, chunk_size=5, bootstrap_resamples=200, precision="fp32")
    evaluate(pinned, data, roles, fp32, tmp_path, meta={"checkpoint": "other"}, show_progress=False)
    assert sum(map(len, pinned.calls)) == 30 and set(pinned.precisions) == {"fp32"}  # precision changes predictions


def test_self_consistency_majority_overrides_minority(tmp_path):
    data, roles = _data()
    student = _student(data, 1.0)
    student.samples_wrong = 1
    cfg = EvalConfig(num_samples=3, temperature=0.7, bootstrap_resamples=100, limit=4)
    report = evaluate(student, data, roles, cfg, tmp_path, show_progress=False)
    assert report["summary"]["groups"]["in_domain"]["strict"]["mean"] == 1.0
    assert len(report["examples"]["arith_travel"]) == 4
    assert len(report["examples"]["arith_travel"][0]["samples"]) == 3


def test_config_validation_names_key():
    with pytest.raises(ConfigError, match="temperature > 0"):
        from_dict(EvalConfig, {"num_samples": 4}, where="eval.yaml")
    with pytest.raises(ConfigError, match="eval.yaml: unknown key 'batchsize'; did you mean 'batch_size'"):
        from_dict(EvalConfig, {"batchsize": 4}, where="eval.yaml")
