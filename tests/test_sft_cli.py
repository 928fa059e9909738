"""``cotdistill train`` and ``cotdistill models`` from the command line (tiny model, two steps)."""

from __future__ import annotations

import json

import yaml

from cotdistill.cli import main
from cotdistill.models import Student


def write_examples(path, n=12):
    with path.open("w") as handle:
        for i in range(n):
            a, b = i, i + 3
            row = {"id": f"x{i}", "domain": "toy", "question": f"What is {a} + {b}?", "answer": str(a + b),
                   "rationale": f"{a} + {b} = {a + b}. The answer is {a + b}."}  # fmt: skip
            handle.write(json.dumps(row) + "\n")


def test_train_command_saves_a_loadable_student(tmp_path, capsys):
    write_examples(tmp_path / "data.jsonl")
    recipe = {
        "data": str(tmp_path / "data.jsonl"),
        "student": {"model": "tiny", "tiny": {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64}},
        "method": "sft",
        "method_args": {"multitask": True, "alpha": 0.7},
        "train": {"max_steps": 2, "batch_size": 4, "progress": False},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "train.lr=0.001", "--output", str(tmp_path / "out")]) == 0
    assert str(tmp_path / "out" / "final") in capsys.readouterr().out
    student = Student.load(tmp_path / "out" / "final")
    assert student.generate([student.prompt("What is 1 + 4?")], max_new_tokens=4, progress=False)[0][0] is not None
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["rows"] == 24
    assert yaml.safe_load((tmp_path / "out" / "train_config.yaml").read_text())["train"]["lr"] == 0.001


def test_train_command_reports_bad_method_args_with_file_and_key(tmp_path, capsys):
    write_examples(tmp_path / "data.jsonl", 2)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"data": str(tmp_path / "data.jsonl"), "method_args": {"alfa": 1}}))
    assert main(["train", str(tmp_path / "r.yaml")]) == 2
    err = capsys.readouterr().err
    assert "r.yaml" in err and "method_args.alfa" in err and "alpha" in err


def test_models_list_shows_presets_and_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COTDISTILL_CACHE", str(tmp_path))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "gemma3-270m" in out and "not pulled" in out and str(tmp_path) in out


def test_models_pull_unknown_name_suggests_a_preset(capsys):
    assert main(["models", "pull", "smollm2-135m"]) == 2
    assert "did you mean 'smollm2-135m-instruct'" in capsys.readouterr().err
