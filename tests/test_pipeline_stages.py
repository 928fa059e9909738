"""The one stage rule (``pipelines.stages``) and ``cotdistill report`` over every pipeline's runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotdistill.cli import main
from cotdistill.errors import ConfigError
from cotdistill.methods.base import TrainConfig
from cotdistill.pipelines.stages import OnChange, Stage, prepare
from cotdistill.report.runs import read_report, runs_of

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _stages(out: Path, lr: float = 1e-3, progress: bool = True, metric: str = "strict") -> list[Stage]:
    train = Stage.directory(out / "train", {"train": TrainConfig(lr=lr, progress=progress)})
    evaluation = Stage.directory(out / "eval", train.after(eval={"metric": metric}), on_change=OnChange.RERUN)
    return [train, evaluation]


def _fill(out: Path) -> None:
    for name in ("train", "eval"):
        (out / name / "done").write_text("x")


def test_a_matching_stage_is_kept_and_cosmetic_settings_are_not_inputs(tmp_path):
    prepare(_stages(tmp_path), resume=False)
    assert json.loads((tmp_path / "train" / "stage.json").read_text())["train"]["lr"] == 1e-3
    assert "progress" not in json.loads((tmp_path / "train" / "stage.json").read_text())["train"]
    _fill(tmp_path)
    prepare(_stages(tmp_path, progress=False), resume=True)
    assert (tmp_path / "train" / "done").exists() and (tmp_path / "eval" / "done").exists()


def test_a_record_written_with_cosmetic_keys_still_matches(tmp_path):
    prepare(_stages(tmp_path), resume=False)
    record = tmp_path / "train" / "stage.json"
    data = json.loads(record.read_text())
    data["train"] |= {"progress": True, "report_to": "none", "run_name": "old/seed-0"}
    record.write_text(json.dumps(data))
    assert all(stage.changes() == [] for stage in _stages(tmp_path))


def test_resume_refuses_a_changed_training_before_touching_anything(tmp_path):
    prepare(_stages(tmp_path), resume=False)
    _fill(tmp_path)
    with pytest.raises(ConfigError, match=r"train was made with a different train config \(train.lr\)"):
        prepare(_stages(tmp_path, lr=0.1), resume=True)
    assert (tmp_path / "train" / "done").exists() and (tmp_path / "eval" / "done").exists()
    assert json.loads((tmp_path / "train" / "stage.json").read_text())["train"]["lr"] == 1e-3


def test_resume_reruns_a_changed_evaluation_and_keeps_the_training(tmp_path):
    prepare(_stages(tmp_path), resume=False)
    _fill(tmp_path)
    prepare(_stages(tmp_path, metric="flexible"), resume=True)
    assert (tmp_path / "train" / "done").exists() and not (tmp_path / "eval" / "done").exists()
    assert json.loads((tmp_path / "eval" / "stage.json").read_text())["eval"] == {"metric": "flexible"}


def test_a_changed_input_reruns_its_stage_and_everything_after_it(tmp_path):
    prepare(_stages(tmp_path), resume=False)
    _fill(tmp_path)
    prepare(_stages(tmp_path, lr=0.1), resume=False)
    assert not (tmp_path / "train" / "done").exists() and not (tmp_path / "eval" / "done").exists()
    assert all(stage.changes() == [] for stage in _stages(tmp_path, lr=0.1))


def test_file_stages_record_in_a_shared_directory(tmp_path):
    output = tmp_path / "eval" / "direct.jsonl"
    stage = Stage.files(tmp_path / "stages", "eval-direct", [output], {"k": 1}, on_change=OnChange.RERUN)
    prepare([stage], resume=False)
    output.parent.mkdir()
    output.write_text("{}\n")
    changed = Stage.files(tmp_path / "stages", "eval-direct", [output], {"k": 2}, on_change=OnChange.RERUN)
    prepare([changed], resume=True)
    assert not output.exists() and json.loads((tmp_path / "stages" / "eval-direct.json").read_text()) == {"k": 2}


def test_recorded_lm_guided_reports_without_a_kind_are_read():
    report = read_report(RESULTS / "lm_guided_tiny")
    assert report["kind"] == "comparison" and report["pipeline"] == "lm_guided"
    runs = runs_of(report, "tiny")
    names = [r.name for r in runs]
    assert "tiny/reasoner alone" in names and "tiny/reasoner + RL rationales (SC k=3)" in names
    entry = runs[0].summary["domains"]["multihop"]
    assert entry["n"] == 16 and set(entry["by_type"]) == {"bridge", "comparison"}


def test_report_reads_a_cot_a_redis_and_lm_guided_runs_together(tmp_path, capsys):
    names = ["default_run", "redis_tiny", "lm_guided_tiny", "lm_guided_smollm2_lora"]
    assert main(["report", *(str(RESULTS / n) for n in names), "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for column in ("default_run/sft", "redis_tiny/redis_sft", "lm_guided_tiny/reasoner alone"):
        assert column in printed
    assert "lm_guided_smollm2_lora/reasoner + KD rationales" in (tmp_path / "comparison.md").read_text()
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
