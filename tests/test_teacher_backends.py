"""Typed teacher configs (one settings section per backend, registered with it) and typed request subjects."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from cotdistill.config import from_dict, save_config, to_dict
from cotdistill.errors import ConfigError
from cotdistill.teachers import (
    TEACHERS,
    CompletionRequest,
    CompletionResult,
    ExampleSubject,
    TeacherConfig,
    build_teacher,
    register_teacher,
)
from cotdistill.teachers.hf_local import HFTeacherConfig
from cotdistill.teachers.openai_compat import OpenAITeacherConfig
from cotdistill.teachers.oracle import OracleTeacherConfig


def test_each_backend_has_its_own_section():
    assert isinstance(TeacherConfig().options, OracleTeacherConfig)
    hf = TeacherConfig(backend="hf", model="m", batch_size=4)
    assert hf.options == HFTeacherConfig(model="m", batch_size=4) and hf.model == "m"
    openai = from_dict(TeacherConfig, {"backend": "openai", "model": "x", "concurrency": 3})
    assert openai.section(OpenAITeacherConfig).concurrency == 3
    with pytest.raises(TypeError, match="not HFTeacherConfig"):
        openai.section(HFTeacherConfig)
    assert TeacherConfig().sampled is False and hf.sampled is True  # the oracle ignores the temperature


def test_flat_and_nested_forms_load_the_same_and_saved_configs_load_back(tmp_path):
    flat = from_dict(TeacherConfig, {"backend": "hf", "model": "m", "device": "cpu"}, where="r.yaml")
    nested = from_dict(TeacherConfig, {"backend": "hf", "options": {"model": "m", "device": "cpu"}}, where="r.yaml")
    assert flat == nested
    assert from_dict(TeacherConfig, to_dict(flat)) == flat
    save_config(flat, tmp_path / "t.yaml")
    assert "options:" in (tmp_path / "t.yaml").read_text()


def test_keys_of_other_backends_are_ignored_unknown_keys_are_not():
    switched = from_dict(TeacherConfig, {"backend": "oracle", "model": "m", "base_url": "http://h/v1", "batch_size": 2})
    assert switched == TeacherConfig()
    with pytest.raises(ConfigError, match=r"r.yaml: unknown key 'teacher.bach_size'; did you mean 'batch_size'"):
        from_dict(TeacherConfig, {"backend": "hf", "model": "m", "bach_size": 2}, where="r.yaml", prefix="teacher.")
    with pytest.raises(ConfigError, match=r"'teacher.options.batch_size' must be an integer"):
        from_dict(TeacherConfig, {"backend": "hf", "options": {"model": "m", "batch_size": "x"}}, prefix="teacher.")
    with pytest.raises(ConfigError, match="needs `model`"):
        from_dict(TeacherConfig, {"backend": "openai"})


def test_a_new_backend_is_one_settings_class_and_one_registration():
    @dataclass
    class EchoConfig:
        prefix: str = "echo"

    class Echo:
        id = "echo"

        def __init__(self, options: EchoConfig):
            self.options = options

        def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
            return [CompletionResult(r.key, [f"{self.options.prefix}: {r.prompt}"] * r.n) for r in requests]

    register_teacher("echo_test", EchoConfig)(lambda cfg: Echo(cfg.section(EchoConfig)))
    try:
        cfg = from_dict(TeacherConfig, {"backend": "echo_test", "prefix": "said"})
        [result] = build_teacher(cfg).complete([CompletionRequest("k", prompt="hi", n=2)])
        assert result.texts == ["said: hi", "said: hi"]
    finally:
        del TEACHERS._items["echo_test"]


def test_example_subject_round_trips_through_generate_and_the_oracle(tmp_path):
    from cotdistill.distill.generate import GenerateConfig, generate_rationales
    from cotdistill.tasks import get_task

    seen: list[CompletionRequest] = []
    oracle = build_teacher(TeacherConfig())

    class Recording:
        id = "oracle"

        def complete(self, requests):
            seen.extend(requests)
            return oracle.complete(requests)

    examples = get_task("arith_shopping").examples("train", 2, 0)
    generate_rationales(GenerateConfig(num_shots=0), examples, tmp_path, teacher=Recording(), show_progress=False)
    subjects = [r.subject for r in seen]
    assert subjects == [ExampleSubject(e.id, e.domain, e.answer, e.rationale) for e in examples]
    with pytest.raises(dataclasses.FrozenInstanceError):
        subjects[0].rationale = "changed"
    [missing] = oracle.complete([CompletionRequest("k", prompt="q")])
    assert not missing.ok and "no gold rationale" in missing.error


def test_redis_requests_are_typed_from_augment_to_the_rule_oracle(tmp_path):
    from cotdistill.methods.redis.augment import AugmentConfig, augment
    from cotdistill.methods.redis.oracle import RuleOracle
    from cotdistill.methods.redis.requests import ApplyRequest, RuleRequest
    from cotdistill.tasks.inductive import sample_tasks

    tasks = sample_tasks("list_functions", 2, seed=0)
    oracle = RuleOracle({t.idx: t for t in tasks}, p_true=1.0, seed=0)
    seen: list[CompletionRequest] = []

    class Recording:
        id = "rule-oracle"

        def complete(self, requests):
            seen.extend(requests)
            return oracle.complete(requests)

    records = augment(tasks, Recording(), AugmentConfig(num_rules=3), tmp_path)
    rules = [r.subject for r in seen if isinstance(r.subject, RuleRequest)]
    applies = [r.subject for r in seen if isinstance(r.subject, ApplyRequest)]
    assert rules == [RuleRequest(t.idx) for t in tasks]
    assert {(a.task_idx, a.rule, a.input) for a in applies} == {
        (t.idx, t.rule.text, p.input) for t in tasks for p in t.train
    }
    assert all(r.rules[0].score == r.n_seen for r in records)  # the true rule reproduces every seen pair
    [untyped] = oracle.complete([CompletionRequest("x", prompt="p")])
    assert not untyped.ok and "not a ReDis" in untyped.error
