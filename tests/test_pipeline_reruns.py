"""In every pipeline a changed recipe re-runs the changed stage (and what follows), ``--resume``
refuses a changed training or teacher stage, re-runs a changed evaluation, and a cosmetic setting
(progress bars) is no change at all. Tiny models and oracle teachers, as in the pipelines' own tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotdistill.cli import main
from cotdistill.errors import CotDistillError
from cotdistill.pipelines import load_recipe
from cotdistill.report.runs import read_report, runs_of
from test_lm_guided_pipeline import tiny_reasoner

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "vocab_size": 300}

COT = """
pipeline: cot
suite:
  seed: 0
  domains:
    - {task: arith_shopping, role: source, n_train: 16, n_dev: 0, n_test: 4}
    - {task: coin_flip, role: target_far, n_train: 4, n_dev: 0, n_test: 4}
student:
  model: tiny
  tiny: {hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, vocab_size: 300}
train: {max_steps: 2, batch_size: 8, max_length: 128, progress: false}
seeds: [0]
eval: {max_new_tokens: 12, batch_size: 16, bootstrap_resamples: 20}
"""

REDIS = """
pipeline: redis
data: {domains: [acre], tasks_per_domain: 6}
augment: {num_rules: 4}
filter: {max_pairs_per_task: 2, max_following_per_task: 2}
student: {model: tiny, finetune: full, tiny: {hidden_size: 32, num_heads: 2, intermediate_size: 64, vocab_size: 400}}
train: {sft_epochs: 1, sft_lr: 1.0e-3, batch_size: 16, max_length: 256}
search: {num_rules: 1, rule_max_tokens: 12, apply_max_tokens: 12, seeds: [0]}
methods: [direct, io_sft]
io_max_per_task: 4
"""


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_cot_reuses_reruns_and_refuses_by_the_stage_rule(tmp_path, capsys):
    recipe = tmp_path / "cot.yaml"
    recipe.write_text(COT)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--output", str(out)]) == 0
    checkpoint = out / "runs" / "sft" / "seed-0" / "train" / "final" / "model.safetensors"
    evaluation = out / "runs" / "sft" / "seed-0" / "eval" / "report.json"
    trained = _stamp(checkpoint)

    # a progress bar is no input: resuming with it on reuses every stage
    assert main(["run", str(recipe), "train.progress=true", "--output", str(out), "--resume"]) == 0
    assert _stamp(checkpoint) == trained
    # a changed evaluation setting re-runs the evaluation only
    assert main(["run", str(recipe), "eval.max_new_tokens=8", "--output", str(out), "--resume"]) == 0
    assert _stamp(checkpoint) == trained
    assert json.loads(evaluation.read_text())["config"]["max_new_tokens"] == 8
    # a changed training is refused on --resume, and re-run (training + evaluation) otherwise
    assert main(["run", str(recipe), "train.lr=0.01", "--output", str(out), "--resume"]) == 2
    assert "different train config (train.lr)" in capsys.readouterr().err
    changed = load_recipe(recipe, ["train.lr=0.01", "eval.max_new_tokens=8"])
    changed.cls().run(changed.config, out)
    assert _stamp(checkpoint) != trained
    assert json.loads((checkpoint.parent.parent / "stage.json").read_text())["train"]["lr"] == 0.01


def test_redis_reuses_reruns_and_refuses_by_the_stage_rule(tmp_path, monkeypatch):
    import cotdistill.pipelines.redis as redis_pipeline

    recipe = tmp_path / "redis.yaml"
    recipe.write_text(REDIS)
    out = tmp_path / "run"
    loaded = load_recipe(recipe)
    loaded.cls().run(loaded.config, out)
    student = out / "students" / "io_sft" / "student.json"
    trained = _stamp(student)

    calls = []
    real_sft = redis_pipeline.sft

    def counting_sft(*args, **kwargs):
        calls.append(args[2])
        return real_sft(*args, **kwargs)

    monkeypatch.setattr(redis_pipeline, "sft", counting_sft)
    refusals = {"train.sft_lr=0.01": r"io_sft was made with a different train config \(train.sft_lr\)"}
    refusals["augment.num_rules=5"] = r"augment was made with a different augment config \(augment.num_rules\)"
    for override, message in refusals.items():
        changed = load_recipe(recipe, [override])
        with pytest.raises(CotDistillError, match=message):
            changed.cls().run(changed.config, out, resume=True)
    # a changed search setting re-runs the evaluations with the trained student
    searched = load_recipe(recipe, ["search.apply_max_tokens=8"])
    searched.cls().run(searched.config, out, resume=True)
    assert not calls and _stamp(student) == trained
    assert json.loads((out / "stages" / "eval-io_sft.json").read_text())["search"]["apply_max_tokens"] == 8
    # without --resume a changed training input retrains that student
    timings = json.loads((out / "timings.json").read_text())
    assert {"augment", "io_sft", "eval io_sft"} <= timings.keys()
    (out / "timings.json").write_text(json.dumps({**timings, "augment": 1e6, "io_sft": 1e6}))
    retrained = load_recipe(recipe, ["train.sft_lr=0.01"])
    retrained.cls().run(retrained.config, out)
    assert [settings.sft_lr for settings in calls] == [0.01] and _stamp(student) != trained
    # the retrained stage's time starts again; the reused augment stage adds to its own
    timings = json.loads((out / "timings.json").read_text())
    assert timings["io_sft"] < 1e6 <= timings["augment"]
    assert read_report(out)["timings_s"] == timings and "## Stage times" in (out / "report.md").read_text()


def test_lm_guided_reuses_reruns_and_refuses_by_the_stage_rule(tmp_path):
    overrides = [
        *tiny_reasoner(tmp_path),
        "data.n_train=4",
        "data.n_test=2",
        *(f"student.tiny.{k}={v}" for k, v in TINY.items()),
        "kd.max_steps=2",
        "kd.batch_size=4",
        "rl.max_steps=1",
        "rl.num_generations=2",
        "rl.max_completion_length=8",
        "eval.k=2",
        "eval.max_rationale_tokens=8",
        "eval.own_cot=false",
        "rewards.weights={exact_match: 1.0}",
    ]
    out = tmp_path / "run"
    recipe = load_recipe("recipes/lm-guided-tiny.yaml", overrides)
    recipe.cls().run(recipe.config, out)
    kd, rl = out / "kd" / "student" / "student.json", out / "rl" / "student" / "student.json"
    stamps = _stamp(kd), _stamp(rl)

    cosmetic = load_recipe("recipes/lm-guided-tiny.yaml", [*overrides, "kd.progress=false", "rl.logging_steps=5"])
    cosmetic.cls().run(cosmetic.config, out, resume=True)
    assert (_stamp(kd), _stamp(rl)) == stamps
    fewer = load_recipe("recipes/lm-guided-tiny.yaml", [*overrides, "data.n_train=3"])
    with pytest.raises(CotDistillError, match=r"rationales was made with a different data config \(data.n_train\)"):
        fewer.cls().run(fewer.config, out, resume=True)
    # without --resume a changed RL input retrains the RL stage and keeps the KD student
    changed = load_recipe("recipes/lm-guided-tiny.yaml", [*overrides, "rl.lr=0.5"])
    changed.cls().run(changed.config, out)
    assert _stamp(kd) == stamps[0] and _stamp(rl) != stamps[1]

    report = read_report(out)
    assert (report["kind"], report["pipeline"]) == ("comparison", "lm_guided")
    assert report["timings_s"] == json.loads((out / "timings.json").read_text())
    assert {"kd rationales", "kd", "rl", "evaluation"} <= report["timings_s"].keys()
    names = [run.name for run in runs_of(report, "")]
    assert "reasoner + RL rationales" in names and "reasoner + KD rationales (SC k=2)" in names
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
