"""The append-only rationale store: keys, torn lines, duplicates, load_kept."""

from __future__ import annotations

import json

import pytest

from cotdistill.distill.store import RationaleRecord, RationaleStore, load_kept, load_records
from cotdistill.errors import DataError


def record(example_id: str, index: int, *, kept: bool = True, gold: str = "4", prediction: str | None = "4"):
    return RationaleRecord(
        example_id=example_id,
        domain="arith",
        question=f"question {example_id}?",
        gold=gold,
        sample_index=index,
        rationale=f"2 + 2 = 4. The answer is {prediction}.",
        prediction=prediction,
        correct=None if not gold else prediction == gold,
        kept=kept,
        reason="correct" if kept else "wrong answer",
        teacher="oracle",
        prompt_hash="abc",
    )


def test_round_trip_and_load_kept(tmp_path):
    path = tmp_path / "rationales.jsonl"
    with RationaleStore(path) as store:
        store.append(record("e1", 0))
        store.append(record("e1", 1, kept=False, prediction="5"))
        store.append(record("e2", 0, gold="", prediction="7"))
    assert [r.key for r in load_records(path)] == [("e1", 0), ("e1", 1), ("e2", 0)]
    kept = load_kept(tmp_path)  # a directory works too
    assert [e.id for e in kept] == ["e1#0", "e2#0"]
    assert kept[0].rationale == "2 + 2 = 4. The answer is 4." and kept[0].answer == "4"
    assert kept[1].answer == "7"  # unlabelled: the teacher's answer
    assert kept[0].meta["example_id"] == "e1" and kept[0].meta["teacher"] == "oracle"


def test_duplicate_key_is_refused_and_reopen_keeps_index(tmp_path):
    path = tmp_path / "rationales.jsonl"
    with RationaleStore(path) as store:
        store.append(record("e1", 0))
        with pytest.raises(DataError, match="already stored"):
            store.append(record("e1", 0))
    with RationaleStore(path) as store:
        assert ("e1", 0) in store and len(store) == 1
        assert [r.sample_index for r in store.samples_of("e1")] == [0]
    assert len(path.read_text().splitlines()) == 1


def test_torn_last_line_is_ignored_then_cut_on_reopen(tmp_path):
    path = tmp_path / "rationales.jsonl"
    with RationaleStore(path) as store:
        store.append(record("e1", 0))
    with path.open("a") as handle:
        handle.write(json.dumps(record("e2", 0).to_dict())[:40])
    assert [r.key for r in load_records(path)] == [("e1", 0)]
    with RationaleStore(path) as store:
        store.append(record("e2", 0))
    assert [r.key for r in load_records(path)] == [("e1", 0), ("e2", 0)]


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "rationales.jsonl"
    good = json.dumps(record("e1", 0).to_dict())
    bad = record("e2", 0).to_dict()
    del bad["kept"]
    path.write_text(good + "\n" + json.dumps(bad) + "\n" + "{oops\n" + good + "\n")
    with pytest.raises(DataError, match=r"rationales.jsonl:2: missing field 'kept'"):
        load_records(path)
    path.write_text(good + "\n{oops\n" + good + "\n")
    with pytest.raises(DataError, match=r"rationales.jsonl:2: invalid JSON"):
        load_records(path)


def test_a_failed_sample_is_superseded_by_its_retry(tmp_path):
    path = tmp_path / "rationales.jsonl"
    failed = RationaleRecord(**{**record("e1", 0).to_dict(), "kept": False, "error": "HTTP 500", "rationale": ""})
    with RationaleStore(path) as store:
        store.append(failed)
        assert store.can_write(("e1", 0))
        store.append(record("e1", 0))
        assert not store.can_write(("e1", 0))
    assert len(path.read_text().splitlines()) == 2
    (only,) = load_records(path)
    assert only.error is None and only.kept
    with RationaleStore(path) as store:
        assert [r.error for r in store.samples_of("e1")] == [None]
