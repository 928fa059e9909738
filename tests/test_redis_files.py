"""ReDis-format files (the paper's test splits): whole files as test sets, families, query types, paper scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotdistill.config import from_dict
from cotdistill.errors import DataError
from cotdistill.pipelines.redis import ReDisConfig, make_split
from cotdistill.tasks import get_task
from cotdistill.tasks.inductive import load_rule_tasks
from cotdistill.tasks.suite import SuiteConfig, load_suite, make_suite

FIXTURES = Path(__file__).parent / "fixtures" / "redis"
ACRE = FIXTURES / "acre_test.jsonl"
LISTS = FIXTURES / "list_function_test.jsonl"


def test_all_queries_with_n_minus_one_and_a_file_as_the_whole_test_set(tmp_path: Path) -> None:
    task = get_task("acre_file", {"path": str(ACRE), "split_files": {"test": str(ACRE)}})
    test = task.examples("test", -1, seed=0)
    assert len(test) == 8  # 2 tasks x 4 queries, none dropped
    assert {e.meta["type"] for e in test} == {"direct", "indirect", "screen_off", "potential"}
    hashed = get_task("list_functions_file", {"path": str(LISTS)})
    assert sum(len(hashed.examples(s, -1, seed=0)) for s in ("train", "dev", "test")) == 6
    cfg = from_dict(
        SuiteConfig,
        {
            "domains": [
                {
                    "task": "acre_file",
                    "name": "acre",
                    "n_train": 0,
                    "n_dev": 0,
                    "n_test": -1,
                    "params": {"path": str(ACRE), "split_files": {"test": str(ACRE)}},
                }
            ]
        },
    )
    suite = load_suite(make_suite(cfg, tmp_path / "suite"))
    assert len(suite.examples("acre", "test")) == 8 and suite.task("acre").labels == ("on", "off", "undetermined")


@pytest.mark.parametrize(
    ("task_name", "path", "reason"),
    [
        ("acre_file", LISTS, "not one of on, off, undetermined"),
        ("list_functions_file", ACRE, "is not a list of integers"),
        ("miniscan_file", LISTS, "not a sequence of colour words"),
    ],
)
def test_a_file_of_another_task_family_is_refused(task_name: str, path: Path, reason: str) -> None:
    with pytest.raises(DataError, match=rf"{path.name}:1: .*{reason}.*another task family"):
        get_task(task_name, {"path": str(path)}).examples("test", -1, seed=0)


def test_query_types_survive_a_round_trip_and_paper_scoring_is_exact(tmp_path: Path) -> None:
    tasks = load_rule_tasks(ACRE, "acre")
    assert [p.type for p in tasks[0].test] == ["potential", "direct", "direct", "screen_off"]
    from cotdistill.tasks.inductive import write_rule_tasks

    write_rule_tasks(tmp_path / "again.jsonl", tasks)
    assert json.loads((tmp_path / "again.jsonl").read_text().splitlines()[0])["test"][0]["type"] == "potential"
    exact = get_task("acre_file", {"path": str(ACRE), "split_files": {"test": str(ACRE)}, "scoring": "exact"})
    on = next(e for e in exact.examples("test", -1, seed=0) if e.answer == "on")
    assert exact.score("on", on).strict and not exact.score("The answer is on.", on).strict
    lists = get_task(
        "list_functions_file", {"path": str(LISTS), "split_files": {"test": str(LISTS)}, "scoring": "exact"}
    )
    example = next(e for e in lists.examples("test", -1, seed=0) if e.answer == "[7, 5]")
    assert lists.score("Output: [7, 5] and then [1]", example).strict
    assert not lists.score("Output: [7,5]", example).strict  # the paper compares the strings
    ours = get_task("list_functions_file", {"path": str(LISTS), "split_files": {"test": str(LISTS)}})
    assert ours.score("Reversed. The answer is [7,5].", example).strict


def test_redis_pipeline_uses_a_test_file_whole(tmp_path: Path) -> None:
    config = from_dict(
        ReDisConfig,
        {"data": {"domains": ["acre"], "tasks_per_domain": 6, "test_files": {"acre": str(ACRE)}}},
    )
    train, test = make_split(config, tmp_path / "data")
    assert len(train) == 6 and [t.idx for t in test] == ["acre-test-3", "acre-test-17"]
    assert all(t.rule is not None for t in train)  # generated: the oracle teacher can still be used
    assert [p.type for p in test[1].test] == ["indirect", "direct", "screen_off", "potential"]
