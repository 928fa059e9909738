"""ReDis / Qiu et al. JSONL format: reading real-looking files, errors with file:line, round trip."""

from __future__ import annotations

import json

import pytest

from cotdistill.errors import DataError
from cotdistill.tasks import get_task
from cotdistill.tasks.inductive import load_rule_tasks, sample_tasks, task_to_dict, write_rule_tasks

LIST_LINES = [
    # strings of Python lists, as in list_function.jsonl
    {
        "idx": 0,
        "train": [{"input": "[3, 4, 1]", "output": "[1]"}, {"input": "[]", "output": "[]"}],
        "test": [{"input": "[4, 7, 6]", "output": "[6]"}],
    },
    # actual lists, odd spacing, string ints, extra keys, no idx
    {
        "train": [{"input": [1, "2", 3], "output": " [3,2,1] ", "note": "x"}],
        "test": [{"input": "[ 5,6 ]", "output": [6, 5]}],
        "source": "hand",
    },
]
ACRE_LINE = {
    "idx": 7,
    "train": [
        {"input": ["blue rubber sphere", "brown rubber cylinder"], "output": "on"},
        {"input": ["brown rubber cylinder"], "output": "off"},
    ],
    "test": [
        {"input": ["blue rubber sphere"], "output": "on", "type": "direct"},
        {"input": ["green metal sphere"], "output": "undetermined", "type": "potential"},
    ],
}
SCAN_LINE = {
    "idx": 0,
    "train": [{"input": "pioff", "output": "RED"}, {"input": "siun  mcneilt", "output": "BLUE BLUE BLUE"}],
    "test": [{"input": "pioff mcneilt", "output": "RED RED RED"}],
}


def _write(path, rows, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(extra_lines), encoding="utf-8")
    return path


def test_reads_list_function_lines(tmp_path):
    tasks = load_rule_tasks(_write(tmp_path / "lf.jsonl", LIST_LINES, ["\n"]), "list_functions")
    assert [t.idx for t in tasks] == ["0", "task-2"]
    assert tasks[0].train[1].input == "[]" and tasks[0].test[0].output == "[6]"
    assert tasks[1].train[0].input == "[1, 2, 3]" and tasks[1].train[0].output == "[3, 2, 1]"
    assert tasks[1].test[0].input == "[5, 6]" and tasks[1].test[0].output == "[6, 5]"


def test_reads_acre_and_miniscan_lines(tmp_path):
    acre = load_rule_tasks(_write(tmp_path / "acre.jsonl", [ACRE_LINE]), "acre")[0]
    assert acre.train[0].input == "blue rubber sphere, brown rubber cylinder"
    assert acre.test[1].output == "undetermined"
    assert task_to_dict(acre)["train"][0]["input"] == ["blue rubber sphere", "brown rubber cylinder"]
    scan = load_rule_tasks(_write(tmp_path / "scan.jsonl", [SCAN_LINE]), "miniscan")[0]
    assert scan.train[1].input == "siun mcneilt"


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json}\n", "invalid JSON"),
        ('{"idx": 1, "test": [{"input": "[1]", "output": "[1]"}]}\n', "missing field 'train'"),
        ('{"idx": 1, "train": [], "test": [{"input": "[1]", "output": "[1]"}]}\n', "non-empty list"),
        (
            '{"idx": 1, "train": [{"input": "[1]"}], "test": [{"input": "[1]", "output": "[1]"}]}\n',
            "train\\[0\\].output",
        ),
        (
            '{"idx": 1, "train": [{"input": "[a, b]", "output": "[1]"}], "test": [{"input": "[1]", "output": "[1]"}]}\n',
            "train\\[0\\]",
        ),
        ("[1, 2]\n", "expected a JSON object"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path / "bad.jsonl", LIST_LINES[:1], [bad_line])
    with pytest.raises(DataError, match=message) as info:
        load_rule_tasks(path, "list_functions")
    assert info.value.line == 2 and str(path) in str(info.value)
    counter: dict[str, int] = {}
    tasks = load_rule_tasks(path, "list_functions", skip_invalid=True, counter=counter)
    assert len(tasks) == 1 and counter["skipped"] == 1


def test_empty_file_and_unknown_domain(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no valid records"):
        load_rule_tasks(empty, "acre")
    with pytest.raises(KeyError, match="did you mean 'acre'"):
        load_rule_tasks(empty, "acr")


@pytest.mark.parametrize("name", ["acre", "arc1d", "list_functions", "miniscan"])
def test_generated_tasks_round_trip(tmp_path, name):
    tasks = sample_tasks(name, 6, seed=0)
    path = tmp_path / f"{name}.jsonl"
    assert write_rule_tasks(path, tasks) == 6
    loaded = load_rule_tasks(path, name)
    assert [(t.idx, t.train, t.test) for t in loaded] == [(t.idx, t.train, t.test) for t in tasks]


def test_file_task_gives_one_example_per_query(tmp_path):
    path = _write(tmp_path / "acre.jsonl", [ACRE_LINE, {**ACRE_LINE, "idx": 8}])
    task = get_task("acre_file", {"path": str(path)})
    examples = [e for split in ("train", "dev", "test") for e in task.examples(split, 100, seed=0)]
    assert len(examples) == 4
    assert len({e.id for e in examples}) == 4
    example = examples[0]
    assert example.question.count("Output:") == 2 and example.answer in {"on", "undetermined"}
    assert task.score(f"The answer is {example.answer}.", example).strict
