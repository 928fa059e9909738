"""Bad input gives one line naming the file, line or key: non-UTF-8 bytes, an output path that is
a file, non-finite numbers, a base_url that is not a URL, a key typed into api_key_env."""

from __future__ import annotations

import json

import pytest
import yaml

from cotdistill.cli import main
from cotdistill.config import from_dict, load_config, save_config
from cotdistill.distill.recipe import GenerateRecipe
from cotdistill.distill.store import load_records
from cotdistill.errors import ConfigError, DataError
from cotdistill.io import read_records
from cotdistill.methods import TrainConfig
from cotdistill.tasks import Example, get_task
from cotdistill.teachers import TeacherConfig


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_non_utf8_jsonl_names_the_file_line_and_byte_offset(tmp_path, capsys):
    good = json.dumps(get_task("arith_travel").examples("train", 1, 0)[0].to_dict()) + "\n"
    path = tmp_path / "q.jsonl"
    path.write_bytes(good.encode() + b'{"id": "caf\xe9"}\n')
    offset = len(good.encode()) + len('{"id": "caf')
    with pytest.raises(DataError, match=rf"q.jsonl:2: not UTF-8 text \(byte 0xe9 at byte offset {offset}\)"):
        read_records(path, Example.from_dict)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"questions": str(path), "output_dir": str(tmp_path / "o")}))
    assert main(["generate", str(tmp_path / "r.yaml"), "--no-progress"]) == 2
    assert "q.jsonl:2: not UTF-8" in one_error_line(capsys)
    (tmp_path / "rationales.jsonl").write_bytes(b"\xff\n")
    with pytest.raises(DataError, match="rationales.jsonl:1: not UTF-8 text"):
        load_records(tmp_path / "rationales.jsonl")


def test_non_utf8_yaml_names_the_file_and_line(tmp_path, capsys):
    (tmp_path / "r.yaml").write_bytes(b"questions: q.jsonl\noutput_dir: caf\xe9\n")
    assert main(["generate", str(tmp_path / "r.yaml")]) == 2
    offset = len(b"questions: q.jsonl\noutput_dir: caf")
    assert f"r.yaml:2: not UTF-8 text (byte 0xe9 at byte offset {offset})" in one_error_line(capsys)


def test_an_output_path_that_is_a_file_is_one_line(tmp_path, capsys):
    questions = get_task("arith_travel").examples("train", 2, 0)
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in questions))
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"questions": str(tmp_path / "q.jsonl")}))
    (tmp_path / "taken").write_text("a file")
    assert main(["generate", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "taken")]) == 2
    assert "taken is a file, not a directory" in one_error_line(capsys)
    assert main(["generate", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "taken" / "sub")]) == 2
    assert "taken is a file" in one_error_line(capsys)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers_are_rejected_at_validation(tmp_path, value):
    (tmp_path / "t.yaml").write_text(f"lr: {value}\n")
    with pytest.raises(ConfigError, match=r"t.yaml: 'lr' must be a finite number"):
        load_config(TrainConfig, tmp_path / "t.yaml")
    with pytest.raises(ConfigError, match="'lr' must be a finite number"):
        load_config(TrainConfig, None, [f"lr={value}"])


@pytest.mark.parametrize("url", ["localhost:8000/v1", "127.0.0.1:8000", "not a url", "ftp://host/v1", "http:///v1"])
def test_a_base_url_that_is_not_a_url_is_rejected(url):
    with pytest.raises(ConfigError, match="base_url must be an http"):
        from_dict(TeacherConfig, {"backend": "openai", "model": "m", "base_url": url}, where="r.yaml")


def test_a_key_typed_into_api_key_env_is_rejected_without_echoing_it(tmp_path):
    key = "sk-proj-AbC123xyz987"
    data = {"questions": "q.jsonl", "generate": {"teacher": {"backend": "openai", "model": "m", "api_key_env": key}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="api_key_env must be the name of an environment variable") as caught:
        load_config(GenerateRecipe, tmp_path / "r.yaml")
    assert key not in str(caught.value)
    assert (
        from_dict(TeacherConfig, {"backend": "openai", "model": "m", "api_key_env": "MY_KEY_2"}).options.api_key_env
        == "MY_KEY_2"
    )


def test_saved_configs_never_hold_url_credentials(tmp_path):
    cfg = TeacherConfig(backend="openai", model="m", base_url="https://bob:hunter2-key@api.example.com/v1")
    save_config(cfg, tmp_path / "c.yaml")
    saved = (tmp_path / "c.yaml").read_text()
    assert "hunter2-key" not in saved and "bob" not in saved and "https://api.example.com/v1" in saved
