"""Loaders for users' files: valid input, malformed input named by file:line, skip_invalid counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotdistill import answers
from cotdistill.errors import ConfigError, DataError, UnknownNameError
from cotdistill.tasks import Example, get_task
from cotdistill.tasks.bigbench import load_bigbench
from cotdistill.tasks.loaders import load_gsm8k, load_hf, load_jsonl, parse_gsm8k


def _lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _example(i: int) -> dict:
    return Example(
        f"x-{i}", "mine", f"What is {i} + 1?", str(i + 1), f"{i} + 1 = {i + 1}. The answer is {i + 1}."
    ).to_dict()


# --------------------------------------------------------------------------- our JSONL


def test_jsonl_valid(tmp_path: Path) -> None:
    path = _lines(tmp_path / "a.jsonl", [_example(i) for i in range(5)])
    examples = load_jsonl(path)
    assert [e.answer for e in examples] == ["1", "2", "3", "4", "5"]
    assert examples[0] == Example.from_dict(_example(0))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"id": "x", "domain": "d", "question": "q"', "invalid JSON"),
        ({"id": "x", "domain": "d", "question": "q"}, "missing field 'answer'"),
        ({"id": "x", "domain": "d", "question": "q", "answer": 3}, "must be a string"),
        ({"id": "x", "domain": "d", "question": "q", "answer": "3", "extra": 1}, "unknown field"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_jsonl_malformed_line_names_file_and_line(tmp_path: Path, bad, reason: str) -> None:
    path = _lines(tmp_path / "a.jsonl", [_example(0), _example(1), bad, _example(3)])
    with pytest.raises(DataError, match=rf"{path}:3: .*{reason}") as info:
        load_jsonl(path)
    assert info.value.line == 3 and info.value.path == str(path)
    counter: dict[str, int] = {}
    assert len(load_jsonl(path, skip_invalid=True, counter=counter)) == 3
    assert counter == {"skipped": 1}


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{empty}: no valid records"):
        load_jsonl(empty)
    with pytest.raises(DataError, match="does not exist"):
        load_jsonl(tmp_path / "missing.jsonl")
    all_bad = _lines(tmp_path / "bad.jsonl", ["{", "{"])
    with pytest.raises(DataError, match="every line was skipped"):
        load_jsonl(all_bad, skip_invalid=True)


def test_jsonl_task_uses_params_answer_type_and_hash_splits(tmp_path: Path) -> None:
    path = _lines(tmp_path / "a.jsonl", [_example(i) for i in range(200)])
    task = get_task("jsonl", {"path": str(path), "answer_type": "number"})
    splits = {s: task.examples(s, -1, seed=0) for s in ("train", "dev", "test")}
    assert sum(len(v) for v in splits.values()) == 200
    assert not {e.question for e in splits["train"]} & {e.question for e in splits["test"]}
    example = splits["test"][0]
    assert task.score(example.rationale, example).strict
    assert task.score("The answer is 1,000.", Example("i", "d", "q", "1000")).strict
    assert task.examples("test", 3, seed=0) == splits["test"][:3]


def test_unknown_task_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="unknown task 'gsm8': did you mean 'gsm8k'|did you mean 'gsm8k'"):
        get_task("gsm8")


def test_file_task_params_are_validated() -> None:
    with pytest.raises(ConfigError, match="path"):
        get_task("jsonl", {})
    with pytest.raises(ConfigError, match="split_files keys"):
        get_task("gsm8k", {"split_files": {"valid": "x.jsonl"}})
    with pytest.raises(ConfigError, match="answer_type"):
        get_task("jsonl", {"path": "x", "answer_type": "numbr"})


# --------------------------------------------------------------------------- GSM8K

GSM = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
}


def test_gsm8k_rationale_drops_calculator_annotations() -> None:
    example = parse_gsm8k(GSM)
    assert example.answer == "72"
    assert "<<" not in example.rationale
    assert example.rationale == (
        "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. "
        + answers.answer_sentence("72")
    )
    assert get_task("gsm8k", {"path": "unused.jsonl"}).score(example.rationale, example).strict
    assert parse_gsm8k({"question": "q", "answer": "so\n#### 1,234"}).answer == "1234"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"question": "q"}, "missing field 'answer'"),
        ({"question": "q", "answer": "no hashes here"}, "no '#### <answer>'"),
        ({"question": "q", "answer": "x ####  "}, "nothing after"),
        ({"question": "", "answer": "#### 1"}, "question"),
    ],
)
def test_gsm8k_malformed(tmp_path: Path, bad: dict, reason: str) -> None:
    path = _lines(tmp_path / "gsm.jsonl", [GSM, bad])
    with pytest.raises(DataError, match=rf"{path}:2: .*{reason}"):
        load_gsm8k(path)
    counter: dict[str, int] = {}
    assert len(load_gsm8k(path, skip_invalid=True, counter=counter)) == 1 and counter["skipped"] == 1


# --------------------------------------------------------------------------- BIG-bench

BIGBENCH = {
    "name": "toy",
    "description": "a toy task",
    "examples": [
        {"input": "Is fire hot?", "target_scores": {"yes": 1, "no": 0}},
        {"input": "Pick the fruit.", "target_scores": {"rock": 0, "apple": 1, "chair": 0}},
    ],
}


def _bigbench(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def test_bigbench_choices_become_letters_and_yes_no_stays_yes_no(tmp_path: Path) -> None:
    path = _bigbench(tmp_path / "task.json", BIGBENCH)
    first, second = load_bigbench(path)
    assert first.question == "Is fire hot?" and first.answer == "yes" and first.meta["answer_type"] == "yesno"
    assert second.question == "Pick the fruit.\nA) rock\nB) apple\nC) chair"
    assert second.answer == "B" and second.meta["choices"] == ["rock", "apple", "chair"]
    task = get_task("bigbench", {"path": str(path)})
    assert task.score("Apples are fruit. The answer is B.", second).strict
    assert task.score("Apples are fruit. The answer is apple.", second).strict
    assert not task.score("The answer is C.", second).strict
    assert task.score("Fire burns. The answer is Yes.", first).strict
    assert not task.score("The answer is a resounding no.", first).strict


def test_bigbench_text_targets(tmp_path: Path) -> None:
    data = {
        "examples": [
            {"input": "Capital of France?", "target": ["Paris", "paris, France"]},
            {"input": "2+2?", "target": "4"},
        ]
    }
    path = _bigbench(tmp_path / "task.json", data)
    first, second = load_bigbench(path)
    assert first.answer == "Paris" and first.meta["targets"] == ["Paris", "paris, France"] and second.answer == "4"
    task = get_task("bigbench", {"path": str(path)})
    assert task.score("It is the city of light. The answer is paris.", first).strict
    assert "letter" not in task.answer_instruction


def test_bigbench_errors_name_file_line_and_index(tmp_path: Path) -> None:
    data = {"examples": [BIGBENCH["examples"][0], {"inputs": "typo"}, BIGBENCH["examples"][1]]}
    path = _bigbench(tmp_path / "task.json", data)
    with pytest.raises(DataError, match=rf"{path}:\d+: examples\[1\]: missing field 'input'") as info:
        load_bigbench(path)
    assert path.read_text().splitlines()[info.value.line - 1].strip() == "{"
    assert '"inputs"' in path.read_text().splitlines()[info.value.line]
    counter: dict[str, int] = {}
    assert len(load_bigbench(path, skip_invalid=True, counter=counter)) == 2 and counter["skipped"] == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"examples": [\n  {"input": "x",\n}', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{broken}:3: invalid JSON"):
        load_bigbench(broken)
    with pytest.raises(DataError, match="'examples' list"):
        load_bigbench(_bigbench(tmp_path / "other.json", {"questions": []}))
    (tmp_path / "empty.json").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        load_bigbench(tmp_path / "empty.json")


# --------------------------------------------------------------------------- HF datasets


def test_hf_local_builder_and_gsm8k_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    path = _lines(tmp_path / "gsm.jsonl", [GSM, {"question": "What is 2 + 3?", "answer": "2 + 3 = 5.\n#### 5"}])
    examples = load_hf("json", split="train", data_files=str(path), answer_format="gsm8k", domain="hfgsm")
    assert [e.answer for e in examples] == ["72", "5"] and examples[1].rationale.endswith("The answer is 5.")
    params = {"path": "json", "data_files": [str(path)], "answer_format": "gsm8k", "answer_type": "number"}
    with pytest.raises(DataError, match=r"Unknown split.*split_names"):
        get_task("hf", params).examples("test", 1, seed=0)
    task = get_task("hf", {**params, "split_names": {"train": "train"}})
    assert task.has_rationale
    total = sum(len(task.examples(s, -1, seed=0)) for s in ("train", "dev", "test"))
    assert total == 2  # train keeps only what is not carved into dev/test by hash
    with pytest.raises(DataError, match="missing field 'query'"):
        load_hf("json", split="train", data_files=str(path), question_field="query")


def test_hf_unreachable_hub_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"datasets:nobody/no-such-dataset\[train\]: could not load .*network access"):
        load_hf("nobody/no-such-dataset", split="train")
