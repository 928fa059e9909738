"""Teacher protocol, config validation, registry and the oracle backend."""

from __future__ import annotations

import pytest

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.teachers import (
    TEACHERS,
    CompletionRequest,
    ExampleSubject,
    Teacher,
    TeacherConfig,
    build_teacher,
    trim_at_stop,
)


def test_backends_are_registered():
    assert {"openai", "hf", "oracle"} <= set(TEACHERS.names())


def test_unknown_backend_suggests_a_name():
    with pytest.raises(ConfigError, match="r.yaml: TeacherConfig: unknown backend 'oracel'; did you mean 'oracle'"):
        from_dict(TeacherConfig, {"backend": "oracel"}, where="r.yaml")


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="concurrency must be >= 1, got 0"):
        from_dict(TeacherConfig, {"backend": "openai", "model": "m", "concurrency": 0}, where="r.yaml")
    with pytest.raises(ConfigError, match="needs `model`"):
        from_dict(TeacherConfig, {"backend": "hf"}, where="r.yaml")
    with pytest.raises(ConfigError, match="r.yaml: 'api' must be one of"):
        from_dict(TeacherConfig, {"backend": "openai", "model": "m", "api": "chatt"}, where="r.yaml")


def test_request_needs_exactly_one_of_prompt_or_messages():
    with pytest.raises(ValueError, match="exactly one"):
        CompletionRequest("k")
    with pytest.raises(ValueError, match="exactly one"):
        CompletionRequest("k", prompt="p", messages=[{"role": "user", "content": "p"}])
    with pytest.raises(ValueError, match="n must be >= 1"):
        CompletionRequest("k", prompt="p", n=0)


def test_oracle_returns_gold_rationale_n_times_and_errors_without_one():
    teacher = build_teacher(TeacherConfig(backend="oracle"))
    assert isinstance(teacher, Teacher)
    results = teacher.complete(
        [
            CompletionRequest(
                "a", prompt="q", n=3, subject=ExampleSubject("e", "d", "4", "2 + 2 = 4. The answer is 4.")
            ),
            CompletionRequest("b", prompt="q"),
        ]
    )
    assert [r.key for r in results] == ["a", "b"]
    assert results[0].ok and results[0].texts == ["2 + 2 = 4. The answer is 4."] * 3
    assert not results[1].ok and "no gold rationale" in results[1].error and results[1].texts == []


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("abc\nQ: next", ["\nQ:"], "abc"),
        ("abc", None, "abc"),
        ("a|b#c", ["#", "|"], "a"),
        ("abc", ["", "zz"], "abc"),
    ],
)
def test_trim_at_stop(text, stop, expected):
    assert trim_at_stop(text, stop) == expected
