"""The Python API's argument handling: dicts are validated like recipes, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cotdistill import api
from cotdistill.errors import ConfigError, CotDistillError, DataError
from cotdistill.tasks import Example

DOMAINS = [
    {"task": "arith_shopping", "role": "source", "n_train": 8, "n_dev": 0, "n_test": 4},
    {"task": "coin_flip", "role": "target_far", "n_train": 4, "n_dev": 0, "n_test": 4},
]


def test_suite_dicts_overrides_and_yaml_paths_build_the_same_suite(tmp_path: Path) -> None:
    suite = api.make_suite({"seed": 0, "domains": DOMAINS}, tmp_path / "a", overrides=["domains.0.n_test=3"])
    assert suite.domains() == ["arith_shopping", "coin_flip"] and len(suite.examples("arith_shopping", "test")) == 3
    assert api.load_suite(tmp_path / "a").manifest == suite.manifest
    with pytest.raises(ConfigError, match="role"):
        api.make_suite({"domains": [{**DOMAINS[0], "role": "sourse"}]}, tmp_path / "b")


def test_generate_takes_a_suites_source_questions_and_training_data_the_targets(tmp_path: Path) -> None:
    suite = api.make_suite({"seed": 0, "domains": DOMAINS}, tmp_path / "suite")
    rationales = api.generate(suite, tmp_path / "rationales", {"teacher": {"backend": "oracle"}}, show_progress=False)
    assert rationales.stats["total"]["kept"] == 8 and len(rationales.kept()) == 8
    data = api.training_data(tmp_path / "suite", tmp_path / "rationales")
    assert {e.domain for e in data.labelled} == {"arith_shopping"}
    assert {e.domain for e in data.unlabelled} == {"coin_flip"} and all(not e.answer for e in data.unlabelled)
    assert set(data.instructions) == {"arith_shopping", "coin_flip"}
    assert api.load_examples(tmp_path / "rationales" / "rationales.jsonl")[0].rationale


def test_bad_arguments_fail_before_any_model_is_built(tmp_path: Path) -> None:
    data = [Example("q1", "toy", "What is 1 + 1?", "2", "1 + 1 = 2. The answer is 2.")]
    with pytest.raises(ConfigError, match="lr"):
        api.train(data, tmp_path / "t", train={"lr": 0})
    with pytest.raises(ConfigError, match="alpha"):
        api.train(data, tmp_path / "t", method_config={"alpha": 2.0})
    with pytest.raises(ConfigError, match="report_to"):
        api.train(data, tmp_path / "t", train={"report_to": "tensorbord"})
    suite = api.make_suite({"seed": 0, "domains": DOMAINS}, tmp_path / "suite")
    with pytest.raises(DataError, match="no domain 'coinflip'.*coin_flip"):
        api.evaluate("unused", suite, tmp_path / "e", domains=["coinflip"])
    with pytest.raises(CotDistillError, match="no questions"):
        api.generate([], tmp_path / "g")
