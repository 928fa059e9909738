"""`cotdistill generate` end to end against a fake OpenAI-compatible server: failures recorded and
the run goes on; SIGKILL mid-run then the same command resumes with no duplicate and nothing lost;
the server dying mid-run then coming back on the same port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cotdistill.cli import main
from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.store import load_records
from cotdistill.tasks import get_task
from cotdistill.teachers import TeacherConfig
from test_teachers_openai import FakeServer, Reply, chat_reply


def questions(n_per_domain: int):
    return get_task("arith_travel").examples("train", n_per_domain, 3) + get_task("last_letter").examples(
        "train", n_per_domain, 3
    )


def reply_with_number(delay: float = 0.0):
    """Every reply states an answer (``The answer is <call number>``), distinct per call."""

    def script(path: str, body: dict, number: int) -> Reply:
        texts = [f"Thinking ({number}.{i}). The answer is {number}." for i in range(body.get("n", 1))]
        return 200, chat_reply(texts), delay

    return script


def openai_cfg(server: FakeServer, **kw) -> GenerateConfig:
    teacher = TeacherConfig(backend="openai", model="fake", base_url=server.base_url, backoff_s=0.01, max_retries=1)
    return GenerateConfig(teacher=teacher, **kw)


def test_failing_questions_are_recorded_with_the_reason_and_the_run_goes_on(tmp_path):
    examples = questions(3)
    bad_ids = {e.question for e in examples[:2]}

    def script(path: str, body: dict, number: int) -> Reply:
        question = body["messages"][-1]["content"]
        if question == examples[0].question:
            return 500, {"error": "server exploded"}, 0.0
        if question == examples[1].question:
            return 200, "<html>not json", 0.0
        return reply_with_number()(path, body, number)

    with FakeServer(script) as server:
        stats = generate_rationales(
            openai_cfg(server, k=2, temperature=0.5, keep="all"), examples, tmp_path, show_progress=False
        )
    records = load_records(tmp_path / "rationales.jsonl")
    assert len(records) == 12
    failed = [r for r in records if r.error]
    assert {r.question for r in failed} == bad_ids and len(failed) == 4
    reasons = {r.example_id: r.error for r in failed}
    assert "HTTP 500" in reasons[examples[0].id] and "server exploded" in reasons[examples[0].id]
    assert "malformed reply" in reasons[examples[1].id]
    assert all("gave up after 2 attempts" in r.error and not r.kept for r in failed)
    assert stats["total"]["errors"] == 4 and stats["total"]["kept"] == 8
    assert stats["total"]["completion_tokens"] == 8 * 3 and stats["total"]["prompt_tokens"] > 0


def write_recipe(tmp_path: Path, base_url: str, examples, **generate) -> Path:
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples))
    teacher = {"backend": "openai", "model": "fake", "base_url": base_url, "concurrency": 1}
    teacher.update(backoff_s=0.01, max_retries=1, timeout_s=5.0)
    recipe = {
        "questions": str(tmp_path / "q.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "generate": {"teacher": teacher, "k": 2, "temperature": 0.7, "keep": "all", "batch_size": 1, **generate},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def cli(recipe: Path) -> list[str]:
    return [sys.executable, "-m", "cotdistill.cli", "generate", str(recipe), "--no-progress"]


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_sigkill_mid_run_then_resume_completes_without_duplicates(tmp_path):
    examples = questions(6)
    store = tmp_path / "out" / "rationales.jsonl"
    with FakeServer(reply_with_number(delay=0.15)) as server:
        recipe = write_recipe(tmp_path, server.base_url, examples)
        process = subprocess.Popen(cli(recipe), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600  # a loaded machine starts slowly
        while len(lines(store)) < 6 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done_before = len(lines(store))
        assert process.returncode == -signal.SIGKILL, process.stdout.read().decode()[-2000:]
        assert 6 <= done_before < 24, "the kill must land mid-run"
        calls_before = len(server.bodies)

        finished = subprocess.run(cli(recipe), capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = lines(store)
    keys = [(r["example_id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 24
    assert set(keys) == {(e.id, i) for e in examples for i in range(2)}
    assert not any(r["error"] for r in rows)
    # the resumed run asked only for the questions not yet stored (one request per question)
    assert len(server.bodies) - calls_before == 12 - done_before // 2
    assert "arith_travel" in finished.stdout and "total" in finished.stdout
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["total"]["asked"] == 12 and stats["total"]["kept"] == 24


def test_server_dies_mid_run_then_restarts_on_the_same_port(tmp_path):
    examples = questions(4)
    store = tmp_path / "out" / "rationales.jsonl"
    first = FakeServer(reply_with_number(delay=0.1))
    port = first.httpd.server_address[1]
    with first:
        # max_failure_rate 1: the run goes on through the outage (by default it would stop early)
        recipe = write_recipe(tmp_path, first.base_url, examples, max_failure_rate=1.0)
        process = subprocess.Popen(cli(recipe), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600  # a loaded machine starts slowly
        while len(lines(store)) < 4 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    output, _ = process.communicate(timeout=300)  # the run goes on without the server and finishes
    assert process.returncode == 0, output.decode()[-2000:]
    rows = lines(store)
    assert len(rows) == 16 and any(r["error"] for r in rows) and any(not r["error"] for r in rows)
    assert all("connection error" in r["error"] for r in rows if r["error"])

    second = FakeServer(reply_with_number(), port=port)
    with second:
        assert main(["generate", str(recipe), "--no-progress"]) == 0
    current = load_records(store)
    assert len(current) == 16 and not any(r.error for r in current)
    assert len(second.bodies) == len({r["example_id"] for r in rows if r["error"]})


def test_generate_command_with_a_suite_and_the_oracle(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "suite": {
                    "seed": 0,
                    "domains": [
                        {"task": "arith_shopping", "n_train": 4, "n_dev": 1, "n_test": 1},
                        {"task": "coin_flip", "role": "target_far", "n_train": 4, "n_dev": 1, "n_test": 1},
                    ],
                },
                "generate": {"k": 1},
            }
        )
    )
    assert main(["generate", str(recipe), "-o", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "arith_shopping" in out and "coin_flip" not in out  # only source domains by default
    assert len(lines(tmp_path / "run" / "rationales.jsonl")) == 4
    assert main(["generate", str(recipe), "-o", str(tmp_path / "run"), "roles=[]", "--no-progress"]) == 0
    assert "coin_flip" in capsys.readouterr().out
    assert main(["generate", str(recipe), "generate.keep=best"]) == 2
    assert "'generate.keep' must be one of" in capsys.readouterr().err
