"""SmolLM2-135M-Instruct + LoRA through the ``cot`` pipeline: train a few steps, save, reload, evaluate."""

import json
from pathlib import Path

import pytest

from cotdistill.models.pull import cached_path
from cotdistill.pipelines import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "smollm2-lora-sft.yaml"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    cached_path("smollm2-135m-instruct") is None,
    reason="SmolLM2-135M-Instruct is not pulled (run `cotdistill models pull smollm2-135m-instruct`)",
)
def test_smollm2_lora_recipe_trains_saves_reloads_and_evaluates(tmp_path):
    overrides = [
        "suite.domains=[{task: arith_shopping, role: source, n_train: 16, n_dev: 0, n_test: 4},"
        " {task: arith_travel, role: target_near, n_train: 4, n_dev: 0, n_test: 4}]",
        "train.max_steps=2",
        "train.save_steps=0",
        "eval.max_new_tokens=48",
    ]
    recipe = load_recipe(RECIPE, overrides)
    out = recipe.cls().run(recipe.config, tmp_path / "run")
    checkpoint = out / "runs" / "sft-lora" / "seed-0" / "train" / "final"
    assert (checkpoint / "adapter_model.safetensors").exists()
    report = json.loads((out / "report.json").read_text())
    domains = report["runs"]["sft-lora"]["summary"]["domains"]
    assert domains["arith_shopping"]["n"] == 4 and domains["arith_travel"]["role"] == "target_near"
    rows = json.loads((out / "runs" / "sft-lora" / "seed-0" / "eval" / "report.json").read_text())["examples"]
    assert all(row["prediction"] for row in rows["arith_shopping"])  # the reloaded model generates text
