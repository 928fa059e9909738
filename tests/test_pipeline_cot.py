"""The ``cot`` pipeline end to end on a tiny config: suite -> oracle rationales -> SFT -> eval -> report."""

import json

import pytest

from cotdistill.cli import main
from cotdistill.errors import ConfigError
from cotdistill.pipelines import load_recipe

RECIPE = """
pipeline: cot
title: tiny test
suite:
  seed: 0
  domains:
    - {task: arith_shopping, role: source, n_train: 24, n_dev: 0, n_test: 6}
    - {task: arith_travel, role: target_near, n_train: 8, n_dev: 0, n_test: 6}
    - {task: coin_flip, role: target_far, n_train: 8, n_dev: 0, n_test: 6}
student:
  model: tiny
  tiny: {hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, vocab_size: 300}
train: {max_steps: 3, batch_size: 8, max_length: 128, progress: false}
variants:
  - {name: sft, method: sft}
seeds: [0, 1]
eval: {max_new_tokens: 12, batch_size: 16, bootstrap_resamples: 50}
"""


def test_cot_pipeline_runs_resumes_and_reports(tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report.md" in printed and "arith_shopping" in printed

    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "comparison" and list(report["runs"]) == ["sft"]
    run = report["runs"]["sft"]
    assert run["seeds"] == [0, 1] and set(run["per_seed"]) == {"0", "1"}
    assert run["summary"]["domains"]["arith_shopping"]["seeds"] == 2
    assert set(run["summary"]["groups"]) >= {"in_domain", "out_of_domain"}
    for seed in (0, 1):
        assert (out / "runs" / "sft" / f"seed-{seed}" / "train" / "final" / "student.json").exists()
        assert (out / "runs" / "sft" / f"seed-{seed}" / "eval" / "report.json").exists()
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "report.md").read_text()
    assert "in-domain (source) strict accuracy" in markdown and "## Per seed" in markdown

    # a second run without --resume is refused; with --resume every stage is reused
    assert main(["run", str(recipe), "--output", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    checkpoint = out / "runs" / "sft" / "seed-0" / "train" / "final" / "model.safetensors"
    stamp = checkpoint.stat().st_mtime_ns
    assert main(["run", str(recipe), "--output", str(out), "--resume"]) == 0
    assert checkpoint.stat().st_mtime_ns == stamp
    assert json.loads((out / "report.json").read_text())["runs"]["sft"]["summary"] == run["summary"]

    # resuming with a changed training recipe is refused instead of mixing results
    assert main(["run", str(recipe), "train.lr=0.1", "--output", str(out), "--resume"]) == 2
    assert "different train config" in capsys.readouterr().err


def test_variant_errors_name_the_key(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(RECIPE.replace("seeds:", "  - {name: typo, method: stf}\nseeds:"))
    with pytest.raises(ConfigError, match=r"bad.yaml: variants\[1\]: unknown method 'stf'; did you mean 'sft'"):
        load_recipe(recipe)
    recipe.write_text(RECIPE.replace("{name: sft, method: sft}", "{name: sft, method: sft, args: {alpah: 0.3}}"))
    with pytest.raises(ConfigError, match=r"unknown key 'args.alpah'; did you mean 'alpha'"):
        load_recipe(recipe)
    with pytest.raises(ConfigError, match="variant names must be unique"):
        load_recipe(tmp_path / "bad.yaml", ["variants=[{name: a}, {name: a}]"])


def test_parallel_jobs_match_sequential_runs(tmp_path):
    """jobs=2 trains the (variant, seed) runs in two processes and reports what jobs=1 reports."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    sequential, parallel = tmp_path / "sequential", tmp_path / "parallel"
    assert main(["run", str(recipe), "--output", str(sequential), "jobs=1"]) == 0
    assert main(["run", str(recipe), "--output", str(parallel), "jobs=2"]) == 0
    one = json.loads((sequential / "report.json").read_text())["runs"]["sft"]
    two = json.loads((parallel / "report.json").read_text())["runs"]["sft"]
    assert two["seeds"] == [0, 1]
    for seed in ("0", "1"):
        assert two["per_seed"][seed] == one["per_seed"][seed]


def test_a_variant_with_its_own_seeds_pairs_over_the_shared_ones(tmp_path, capsys):
    """``variants[].seeds`` trains a costly variant on fewer seeds; the finished trainings are kept
    and its difference from the baseline is paired over the seeds both ran."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--output", str(out)]) == 0
    checkpoint = out / "runs" / "sft" / "seed-0" / "train" / "final" / "model.safetensors"
    stamp = checkpoint.stat().st_mtime_ns

    variants = (
        "variants=[{name: sft, method: sft, seeds: [0, 1]}, {name: fast, method: sft, train: {lr: 0.01}, seeds: [1]}]"
    )
    assert main(["run", str(recipe), variants, "--output", str(out), "--resume"]) == 0
    assert checkpoint.stat().st_mtime_ns == stamp  # listing the baseline's seeds kept its trainings
    assert not (out / "runs" / "fast" / "seed-0").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["runs"]["fast"]["seeds"] == [1] and report["runs"]["sft"]["seeds"] == [0, 1]
    assert report["paired"]["fast"]["seeds"] == [1]
    assert "| fast | 1 |" in (out / "report.md").read_text()
    capsys.readouterr()

    with pytest.raises(ConfigError, match="seeds must be distinct"):
        load_recipe(recipe, ["variants=[{name: sft, seeds: [1, 1]}]"])
