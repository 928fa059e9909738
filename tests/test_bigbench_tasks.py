"""BIG-bench task.json files as BIG-bench prompts them: prefixes, few-shot, yes/no, choices, lists, directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError, DataError
from cotdistill.tasks import AnswerType, get_task
from cotdistill.tasks.bigbench import load_bigbench
from cotdistill.tasks.suite import SuiteConfig, load_suite, make_suite

FIXTURES = Path(__file__).parent / "fixtures"
STRATEGYQA = FIXTURES / "bigbench" / "strategyqa" / "task.json"
PERIODIC = FIXTURES / "bigbench" / "periodic_elements" / "task.json"
LIST_FUNCTIONS = FIXTURES / "bigbench" / "list_functions"


def _whole_file_as(split: str, path: Path, **params) -> dict:
    return {"path": str(path), "split_files": {split: str(path)}, **params}


def test_yes_no_options_are_yesno_with_target_as_rationale() -> None:
    task = get_task("bigbench", _whole_file_as("test", STRATEGYQA))
    examples = task.examples("test", -1, seed=0)
    assert task.answer_type == AnswerType.YESNO and task.has_rationale and len(examples) == 6
    cheetah = next(e for e in examples if "cheetah" in e.question)
    assert cheetah.answer == "Yes" and "A)" not in cheetah.question
    assert cheetah.rationale.startswith("Yes. A cheetah can only sprint") and cheetah.rationale.endswith(
        "The answer is Yes."
    )
    assert cheetah.question.startswith("Answer the question with yes or no, then explain.\n\nQ: Could a bicycle")
    assert task.score("Cheetahs tire quickly. The answer is Yes.", cheetah).strict
    assert task.score("The answer is yes.", cheetah).strict
    assert not task.score("The answer is a resounding no.", cheetah).strict
    assert "yes or no" in task.answer_instruction


def test_shots_come_from_the_same_split_never_the_query_and_are_deterministic() -> None:
    params = _whole_file_as("test", STRATEGYQA, shots=3)
    first = get_task("bigbench", params).examples("test", -1, seed=0)
    again = get_task("bigbench", params).examples("test", -1, seed=5)
    assert {e.id: e.question for e in first} == {e.id: e.question for e in again}
    for example in first:
        asked = example.meta["input_block"]
        body = example.question.split("\n\nQ: ")
        assert body[-1] == asked and len(body) == 1 + 3 + 1  # the task prefix, 3 shots, then the query
        assert all(asked not in shot for shot in body[:-1])
        assert all("\nA: " in shot for shot in body[1:-1])  # solved shots show the target
    hashed = get_task("bigbench", {"path": str(STRATEGYQA), "shots": 2})
    for split in ("train", "dev", "test"):
        inputs = {e.meta["input_block"] for e in hashed.examples(split, -1, seed=0)}
        for example in hashed.examples(split, -1, seed=0):
            shown = {line.removeprefix("Q: ") for line in example.question.splitlines() if line.startswith("Q: ")}
            assert shown <= inputs  # shots never cross the train/dev/test split


def test_choices_score_letters_and_option_text() -> None:
    fe, hydrogen = load_bigbench(PERIODIC)[:2]
    assert fe.question == "Which element has the symbol Fe?\nA) Lead\nB) Iron\nC) Fluorine" and fe.answer == "B"
    task = get_task("bigbench", {"path": str(PERIODIC)})
    assert "a letter" in task.answer_instruction and task.answer_type == AnswerType.CHOICE
    for said in ("The answer is B.", "The answer is (B).", "The answer is Iron.", "The answer is option b"):
        assert task.score(said, fe).strict, said
    assert not task.score("The answer is a metal.", fe).strict
    assert task.score("Hydrogen is the lightest. The answer is C) Hydrogen.", hydrogen).strict


def test_list_targets_and_a_directory_of_tasks_become_one_domain_each(tmp_path: Path) -> None:
    source = tmp_path / "list_functions"
    shutil.copytree(LIST_FUNCTIONS, source)
    cfg = from_dict(
        SuiteConfig,
        {
            "domains": [
                {
                    "task": "bigbench",
                    "name": "lf",
                    "n_train": -1,
                    "n_dev": -1,
                    "n_test": -1,
                    "params": {"path": str(source), "shots": 2},
                },
            ]
        },
    )
    assert [d.name for d in cfg.domains] == ["lf.c001", "lf.c002"]
    make_suite(cfg, tmp_path / "suite")
    shutil.rmtree(source)  # eval must not need the source files any more
    suite = load_suite(tmp_path / "suite")
    assert suite.domains() == ["lf.c001", "lf.c002"]
    task = suite.task("lf.c001")
    assert task.answer_type == AnswerType.LIST and "Python list" in task.answer_instruction
    example = next(e for split in ("train", "dev", "test") for e in suite.examples("lf.c001", split))
    assert "\nInput: " in f"\n{example.question}" and "\nOutput: " in example.question
    assert task.score(f"Sorted. The answer is {example.answer}.", example).strict
    with pytest.raises(ConfigError, match="no task.json"):
        from_dict(SuiteConfig, {"domains": [{"task": "bigbench", "params": {"path": str(tmp_path / "suite")}}]})


@pytest.mark.parametrize("task_name", ["gsm8k", "jsonl", "bigbench", "acre_file", "hotpot"])
def test_a_directory_where_a_file_is_expected_is_a_one_line_error(tmp_path: Path, task_name: str) -> None:
    (tmp_path / "data").mkdir()
    params = {"path": str(tmp_path / "data"), "split_files": {"test": str(tmp_path / "data")}}
    if task_name == "bigbench":
        params = {"path": str(STRATEGYQA), "split_files": {"test": str(tmp_path / "data")}}
    with pytest.raises(DataError, match=r"data: is a directory; expected a file$"):
        get_task(task_name, params).examples("test", -1, seed=0)


def test_bad_shots_and_prefix_types_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shots must be >= 0"):
        get_task("bigbench", {"path": str(STRATEGYQA), "shots": -1})
    bad = tmp_path / "task.json"
    bad.write_text('{"task_prefix": 3, "examples": [{"input": "x", "target": "y"}]}', encoding="utf-8")
    with pytest.raises(DataError, match="'task_prefix' must be a string"):
        load_bigbench(bad)
