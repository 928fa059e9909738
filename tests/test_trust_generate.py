"""Generation against a fake OpenAI-compatible server on 127.0.0.1 with injected faults:
final majority verdicts, empty completions retried, refusals stop at once, a failure-rate
threshold, secrets kept out of files and logs, one pooled connection per run."""

from __future__ import annotations

import json
import logging
import socket
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cotdistill.cli import main
from cotdistill.distill.generate import GenerateConfig, GenerationFailedError, generate_rationales
from cotdistill.distill.store import load_records
from cotdistill.tasks import get_task
from cotdistill.teachers import TeacherConfig, TeacherRefusedError
from test_teachers_openai import FakeServer, Reply, chat_reply

KEY = "sk-test-0123456789abcdef"


def questions(n: int):
    return get_task("arith_travel").examples("train", n, 5)


def teacher_cfg(base_url: str, **kw) -> TeacherConfig:
    options = {"backend": "openai", "model": "fake", "base_url": base_url, "backoff_s": 0.01, "max_retries": 0}
    options.update(concurrency=1, timeout_s=5.0, native_n=False, api_key_env="COTDISTILL_TEST_KEY")
    return TeacherConfig(**{**options, **kw})


def write_recipe(tmp_path: Path, base_url: str, examples, **generate) -> Path:
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples))
    teacher = {"backend": "openai", "model": "fake", "base_url": base_url, "concurrency": 2}
    teacher.update(backoff_s=0.01, max_retries=0, timeout_s=5.0, api_key_env="COTDISTILL_TEST_KEY")
    recipe = {
        "questions": str(tmp_path / "q.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "generate": {"teacher": teacher, "keep": "all", **generate},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


class PerQuestion:
    """Replies by the question and how often it was asked: ``answers[run][call] -> text or status``."""

    def __init__(self):
        self.run = 0
        self.calls: Counter = Counter()
        self.plan: dict[int, list] = {}

    def __call__(self, path: str, body: dict, number: int) -> Reply:
        question = body["messages"][-1]["content"]
        call = self.calls[(self.run, question)]
        self.calls[(self.run, question)] += 1
        answer = self.plan[self.run][call]
        if isinstance(answer, int):
            return answer, {"error": "scripted"}, 0.0
        return 200, chat_reply([f"Step {number}. The answer is {answer}."]), 0.0


def test_majority_verdicts_come_from_the_final_samples(tmp_path):
    """Two answers arrive, two fail; on the rerun the other two agree: all four are kept (4/4 >= 3)."""
    examples = questions(1)
    script = PerQuestion()
    script.plan = {0: ["7", "7", 500, 500], 1: ["7", "7"]}
    with FakeServer(script) as server:
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url), k=4, temperature=0.7, keep="majority", min_votes=3)
        cfg.max_failure_rate = 1.0
        generate_rationales(cfg, examples, tmp_path, show_progress=False)
        first = load_records(tmp_path / "rationales.jsonl")
        assert not any(r.kept for r in first)
        assert sum(r.pending for r in first) == 2 and sum(r.error is not None for r in first) == 2
        script.run = 1
        stats = generate_rationales(cfg, examples, tmp_path, show_progress=False)
    final = load_records(tmp_path / "rationales.jsonl")
    assert len(final) == 4 and all(r.kept and not r.pending for r in final), [r.reason for r in final]
    assert all(r.reason == "majority (4/4 votes)" for r in final)
    assert stats["total"]["kept"] == 4 and stats["total"]["pending"] == 0


def test_a_late_majority_unkeeps_an_early_minority(tmp_path):
    examples = questions(1)
    script = PerQuestion()
    script.plan = {0: ["7", 500, 500, 500], 1: ["9", "9", "9"]}
    with FakeServer(script) as server:
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url), k=4, temperature=0.7, keep="majority")
        cfg.max_failure_rate = 1.0
        generate_rationales(cfg, examples, tmp_path, show_progress=False)
        script.run = 1
        generate_rationales(cfg, examples, tmp_path, show_progress=False)
    final = load_records(tmp_path / "rationales.jsonl")
    assert sorted((r.prediction, r.kept) for r in final) == [("7", False), ("9", True), ("9", True), ("9", True)]


def test_empty_completions_are_failures_and_are_retried(tmp_path):
    examples = questions(2)
    empty_once = {"first": True}

    def script(path: str, body: dict, number: int) -> Reply:
        if body["messages"][-1]["content"] == examples[0].question and empty_once["first"]:
            return 200, chat_reply(["   "]), 0.0
        return 200, chat_reply([f"Step {number}. The answer is 3."]), 0.0

    with FakeServer(script) as server:
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url, max_retries=1), keep="all", max_failure_rate=1.0)
        generate_rationales(cfg, examples, tmp_path, show_progress=False)
        failed = {r.example_id: r for r in load_records(tmp_path / "rationales.jsonl")}[examples[0].id]
        assert failed.error is not None and "empty completion" in failed.error and not failed.kept
        empty_once["first"] = False
        generate_rationales(cfg, examples, tmp_path, show_progress=False)
    retried = {r.example_id: r for r in load_records(tmp_path / "rationales.jsonl")}[examples[0].id]
    assert retried.error is None and retried.kept and retried.rationale.endswith("The answer is 3.")


def test_a_refused_key_stops_the_run_at_once_without_leaking_it(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("COTDISTILL_TEST_KEY", KEY)
    examples = questions(12)

    def script(path: str, body: dict, number: int) -> Reply:
        return 401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}, 0.05

    with FakeServer(script) as server, caplog.at_level(logging.DEBUG):
        recipe = write_recipe(tmp_path, server.base_url, examples)
        assert main(["generate", str(recipe), "--no-progress"]) == 2
        asked = len(server.bodies)
    err = capsys.readouterr().err
    assert "refused" in err and "HTTP 401" in err and "Incorrect API key" in err and len(err.splitlines()) == 1
    assert asked <= 2, "requests after the first refusal must be cancelled"
    out_dir = tmp_path / "out"
    for path in out_dir.iterdir():
        if path.is_file():
            assert KEY not in path.read_text(), path
    assert KEY not in err and KEY not in caplog.text


def test_server_errors_echoing_the_key_are_stored_redacted(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("COTDISTILL_TEST_KEY", KEY)

    def script(path: str, body: dict, number: int) -> Reply:
        return 500, {"error": f"upstream rejected Bearer {KEY}"}, 0.0

    with FakeServer(script) as server, caplog.at_level(logging.DEBUG):
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url), max_failure_rate=1.0)
        generate_rationales(cfg, questions(2), tmp_path, show_progress=False)
    records = load_records(tmp_path / "rationales.jsonl")
    assert all(r.error and "upstream rejected Bearer ***" in r.error for r in records)
    assert KEY not in (tmp_path / "rationales.jsonl").read_text() and KEY not in caplog.text


def test_credentials_in_base_url_are_used_but_never_stored_or_logged(tmp_path, caplog):
    with FakeServer(lambda path, body, number: (200, chat_reply(["The answer is 1."]), 0.0)) as server:
        url = server.base_url.replace("http://", "http://alice:pw-SECRET-42@")
        cfg = GenerateConfig(teacher=teacher_cfg(url), keep="all")
        with caplog.at_level(logging.DEBUG):
            generate_rationales(cfg, questions(2), tmp_path, show_progress=False)
        assert all(h["Authorization"].startswith("Basic ") for h in server.headers)
    assert "HTTP Request" in caplog.text and "pw-SECRET-42" not in caplog.text
    for path in tmp_path.iterdir():
        if path.is_file():
            assert "pw-SECRET-42" not in path.read_text(), path
    assert "127.0.0.1" in (tmp_path / "generate_config.yaml").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_run_whose_requests_all_fail_exits_non_zero_after_saving(tmp_path, capsys):
    recipe = write_recipe(tmp_path, f"http://127.0.0.1:{free_port()}/v1", questions(4), batch_size=2)
    assert main(["generate", str(recipe), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "max_failure_rate=0.5" in captured.err and "rerun the same command" in captured.err
    assert "connection error" in captured.err and "total" in captured.out
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["run"] == {"asked": 2, "failed": 2}, "the run stops after the first failing batch"


def test_a_failure_rate_under_the_threshold_finishes(tmp_path):
    examples = questions(4)

    def script(path: str, body: dict, number: int) -> Reply:
        if body["messages"][-1]["content"] == examples[0].question:
            return 500, {"error": "down"}, 0.0
        return 200, chat_reply(["The answer is 2."]), 0.0

    with FakeServer(script) as server:
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url), keep="all", max_failure_rate=0.5)
        stats = generate_rationales(cfg, examples, tmp_path, show_progress=False)
        cfg.max_failure_rate = 0.2
        with pytest.raises(GenerationFailedError, match="1 of 1 teacher samples failed"):
            generate_rationales(cfg, examples, tmp_path, show_progress=False)
    assert stats["run"] == {"asked": 4, "failed": 1}


def test_not_found_raises_teacher_refused(tmp_path):
    with FakeServer(lambda path, body, number: (404, {"error": "model 'fake' not found"}, 0.0)) as server:
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url))
        with pytest.raises(TeacherRefusedError, match="model 'fake' not found"):
            generate_rationales(cfg, questions(3), tmp_path, show_progress=False)
        assert len(server.bodies) == 1


def test_one_pooled_connection_serves_every_batch_of_a_run(tmp_path):
    reply = lambda path, body, number: (200, chat_reply(["The answer is 5."]), 0.0)  # noqa: E731
    with FakeServer(reply, keep_alive=True) as server:
        cfg = GenerateConfig(teacher=teacher_cfg(server.base_url), keep="all", batch_size=2)
        generate_rationales(cfg, questions(6), tmp_path, show_progress=False)
        assert len(server.bodies) == 6
        assert server.connections == 1
