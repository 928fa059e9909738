"""Config loading: every error names the file and the key; overrides; resolved config saved."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cotdistill.config import load_config, save_config, to_dict
from cotdistill.errors import ConfigError
from cotdistill.tasks.suite import Role, SuiteConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
seed: 3
domains:
  - task: arith_shopping
    n_train: 10
  - task: last_letter
    name: letters_long
    role: target_far
    params: {min_words: 4, max_words: 5}
"""


def test_valid_suite_config_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(SuiteConfig, _write(tmp_path, GOOD))
    assert cfg.seed == 3 and cfg.domains[0].name == "arith_shopping" and cfg.domains[0].n_train == 10
    assert cfg.domains[1].role is Role.TARGET_FAR and cfg.domains[1].params == {"min_words": 4, "max_words": 5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "seed: 1\ndomains: [{task: arith_shopping, n_trian: 5}]",
            r"unknown key 'domains\[0\]\.n_trian'; did you mean 'n_train'",
        ),
        ("sede: 1\ndomains: [{task: arith_shopping}]", r"unknown key 'sede'; did you mean 'seed'"),
        ("seed: one\ndomains: [{task: arith_shopping}]", r"'seed' must be an integer, got 'one'"),
        ("domains: [{task: arith_shopping, n_dev: 2.5}]", r"'domains\[0\]\.n_dev' must be an integer"),
        ("domains: {task: arith_shopping}", r"'domains' must be a list"),
        (
            "domains: [{task: arith_shopping, role: target}]",
            r"'domains\[0\]\.role' must be one of .*did you mean 'target_far'",
        ),
        (
            "domains: [{task: arith_shoping}]",
            r"domains\[0\]: unknown task 'arith_shoping'; did you mean 'arith_shopping'",
        ),
        ("domains: [{task: arith_chain, n_test: -5}]", r"domains\[0\]: n_test must be >= 0"),
        ("domains: [{task: arith_chain, n_test: -1}]", r"only works for file-backed tasks"),
        (
            "domains: [{task: coin_flip, params: {flip_prob: 2}}]",
            r"domains\[0\]: .*flip_prob must be in \[0, 1\], got 2",
        ),
        (
            "domains: [{task: coin_flip, params: {flip_prb: 0.5}}]",
            r"domains\[0\]: .*unknown key 'flip_prb'; did you mean 'flip_prob'",
        ),
        ("domains: [{task: coin_flip}, {task: coin_flip}]", r"domain names must be unique; repeated: \['coin_flip'\]"),
        ("domains: []", r"domains must list at least one domain"),
        ("seed: 1", r"domains must list at least one domain"),
        ("- just\n- a list", r"the top level must be a mapping"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(SuiteConfig, path)
    message = str(info.value)
    assert str(path) in message
    assert re.search(expected, message), message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed: 1\ndomains:\n  - task: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: invalid YAML"):
        load_config(SuiteConfig, path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(SuiteConfig, tmp_path / "nope.yaml")


def test_dotted_overrides_reach_list_items_and_params(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    cfg = load_config(SuiteConfig, path, ["seed=9", "domains.0.n_train=42", "domains.1.params.max_words=6"])
    assert cfg.seed == 9 and cfg.domains[0].n_train == 42 and cfg.domains[1].params["max_words"] == 6
    with pytest.raises(ConfigError, match=r"overrides: .*unknown key 'domains\[0\]\.n_tran'"):
        load_config(SuiteConfig, path, ["domains.0.n_tran=1"])
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        load_config(SuiteConfig, path, ["seed"])


def test_resolved_config_round_trips_through_yaml(tmp_path: Path) -> None:
    cfg = load_config(SuiteConfig, _write(tmp_path, GOOD))
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(SuiteConfig, tmp_path / "resolved.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text())["domains"][1]["role"] == "target_far"


def test_float_fields_accept_exponents_yaml_reads_as_strings() -> None:
    from cotdistill.methods.base import TrainConfig

    config = load_config(TrainConfig, overrides=["lr=1e-3"])
    assert config.lr == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match=r"'lr' must be a number, got 'fast'"):
        load_config(TrainConfig, overrides=["lr=fast"])
