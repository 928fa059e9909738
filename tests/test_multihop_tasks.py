"""The procedural multi-hop generator and the HotpotQA / 2Wiki file loader."""

from __future__ import annotations

import json

import pytest

from cotdistill.errors import DataError
from cotdistill.tasks import get_task
from cotdistill.tasks.hotpot import load_multihop
from cotdistill.tasks.multihop import render_context, supporting_sentences


def test_generator_examples_are_hotpot_shaped_and_deterministic():
    task = get_task("multihop", {"distractors": 3})
    examples = task.examples("train", 40, seed=1)
    assert examples == task.examples("train", 40, seed=1)
    assert {e.meta["type"] for e in examples} == {"bridge", "comparison"}
    for example in examples:
        context = example.meta["context"]
        assert len(context) == 5
        facts = supporting_sentences(context, example.meta["supporting_facts"])
        assert len(facts) == 2
        assert example.rationale.endswith(f"The answer is {example.answer}.")
        assert task.score(example.rationale, example).strict
        assert example.answer in render_context(context)


def test_generator_splits_are_disjoint():
    task = get_task("multihop")
    train = {e.question for e in task.examples("train", 60, seed=0)}
    test = {e.question for e in task.examples("test", 10, seed=0)}
    assert not train & test


def test_generator_rejects_bad_params():
    from cotdistill.errors import ConfigError

    with pytest.raises(ConfigError, match="comparison_ratio"):
        get_task("multihop", {"comparison_ratio": 2})


HOTPOT = {
    "_id": "5a8b57f25542995d1e6f1371",
    "question": "Were Scott Derrickson and Ed Wood of the same nationality?",
    "answer": "yes",
    "type": "comparison",
    "level": "hard",
    "supporting_facts": [["Scott Derrickson", 0], ["Ed Wood", 0], ["Not In Context", 3]],
    "context": [
        ["Ed Wood", ["Edward Davis Wood Jr. was an American filmmaker.", " He was born in 1924."]],
        ["Scott Derrickson", ["Scott Derrickson is an American director."]],
    ],
}
WIKI_HF = {
    "id": "13f5ad2c088c11ebbd6fac1f6bf848b6",
    "question": "Who was born first, Ann or Bob?",
    "answer": "Ann",
    "type": "comparison",
    "evidences": [["Ann", "date of birth", "1900"]],
    "context": {"title": ["Ann", "Bob"], "sentences": [["Ann was born in 1900."], ["Bob was born in 1950."]]},
    "supporting_facts": {"title": ["Ann", "Bob"], "sent_id": [0, 0]},
}


def test_loader_reads_json_list_and_jsonl_variants(tmp_path):
    listing = tmp_path / "dev.json"
    listing.write_text(json.dumps([HOTPOT, WIKI_HF]))
    lines = tmp_path / "dev.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in (HOTPOT, WIKI_HF)) + "\n\n")
    for path in (listing, lines):
        hotpot, wiki = load_multihop(path)
        assert hotpot.id == "hotpot-5a8b57f25542995d1e6f1371" and hotpot.answer == "yes"
        assert hotpot.meta["supporting_facts"] == [["Scott Derrickson", 0], ["Ed Wood", 0]]
        assert hotpot.meta["context"][0][1][1] == "He was born in 1924."
        assert hotpot.meta["level"] == "hard"
        assert wiki.meta["context"] == [["Ann", ["Ann was born in 1900."]], ["Bob", ["Bob was born in 1950."]]]
        assert supporting_sentences(wiki.meta["context"], wiki.meta["supporting_facts"]) == [
            "Ann was born in 1900.",
            "Bob was born in 1950.",
        ]


def test_loader_unlabelled_test_record(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"_id": "x", "question": "Q?", "context": [["T", ["s."]]]}) + "\n")
    (example,) = load_multihop(path)
    assert example.answer == "" and example.meta["supporting_facts"] == []


def test_loader_errors_name_file_line_and_key(tmp_path):
    path = tmp_path / "bad.jsonl"
    bad = {**HOTPOT, "context": [["Ed Wood", "not a list"]]}
    path.write_text(json.dumps(HOTPOT) + "\n" + json.dumps({"answer": "x"}) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as info:
        load_multihop(path)
    assert info.value.line == 2 and "'question'" in str(info.value) and str(path) in str(info.value)
    counter: dict[str, int] = {}
    assert len(load_multihop(path, skip_invalid=True, counter=counter)) == 1
    assert counter["skipped"] == 2

    listing = tmp_path / "bad.json"
    listing.write_text(json.dumps([HOTPOT, bad]))
    with pytest.raises(DataError, match=r"record \[1\]: key 'context\[0\]'"):
        load_multihop(listing)


def test_hotpot_task_reads_a_file_named_in_params(tmp_path):
    records = [{**HOTPOT, "_id": str(i), "question": f"Question number {i}?"} for i in range(60)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    task = get_task("hotpot", {"path": str(path)})
    train, test = task.examples("train", 100, 0), task.examples("test", 100, 0)
    assert len(train) + len(task.examples("dev", 100, 0)) + len(test) == 60
    assert not {e.id for e in train} & {e.id for e in test}
    assert task.examples("train", 5, 0) == task.examples("train", 5, 0)
    assert task.score("The answer is Yes.", train[0]).strict
