"""JsonlAppender syncs each record, or once per ``batch()`` block."""

import json
import os

from cotdistill.io import JsonlAppender


def test_batch_syncs_once_and_keeps_every_record(tmp_path, monkeypatch) -> None:
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    path = tmp_path / "r.jsonl"
    with JsonlAppender(path) as appender:
        appender.append({"i": 0})
        assert len(calls) == 1
        with appender.batch():
            for i in range(1, 6):
                appender.append({"i": i})
            assert len(calls) == 1
        assert len(calls) == 2
        appender.append({"i": 6})
        assert len(calls) == 3
    assert [json.loads(line)["i"] for line in path.read_text().splitlines()] == list(range(7))


def test_a_batch_that_raises_still_syncs_what_it_wrote(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    appender = JsonlAppender(path)
    try:
        with appender.batch():
            appender.append({"i": 1})
            raise RuntimeError("teacher died")
    except RuntimeError:
        pass
    assert json.loads(path.read_text())["i"] == 1
    appender.close()
