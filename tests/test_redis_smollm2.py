"""SmolLM2-135M-Instruct + LoRA through the ``redis`` pipeline: a few steps of every stage, then hypothesis search."""

import json
from pathlib import Path

import pytest

from cotdistill.models.pull import cached_path
from cotdistill.pipelines import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "redis-smollm2-lora.yaml"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    cached_path("smollm2-135m-instruct") is None,
    reason="SmolLM2-135M-Instruct is not pulled (run `cotdistill models pull smollm2-135m-instruct`)",
)
def test_smollm2_redis_recipe_runs_every_stage(tmp_path):
    overrides = [
        "data.domains=[list_functions]",
        "data.tasks_per_domain=10",
        "augment.num_rules=8",
        "filter.max_pairs_per_task=2",
        "filter.max_following_per_task=2",
        "filter.max_generation_per_task=2",
        "train.sft_epochs=1",
        "train.batch_size=8",
        "train.max_length=512",
        "search.num_rules=2",
        "search.rule_max_tokens=48",
        "search.apply_max_tokens=32",
        "methods=[hs_base,redis_orpo]",
    ]
    recipe = load_recipe(RECIPE, overrides)
    out = recipe.cls().run(recipe.config, tmp_path / "run")
    report = json.loads((out / "report.json").read_text())
    assert report["table"]["redis_orpo"]["list_functions"]["total"] == 8
    rules = report["best_rules"]["redis_orpo"]
    assert rules and all(isinstance(rule, str) and rule for rule in rules.values())
    assert (out / "students" / "redis_orpo" / "student.json").exists()
    assert (out / "students" / "redis_sft" / "student.json").exists()
