"""generate_rationales with the oracle and a scripted teacher: policies, rationalisation, resume, stats."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.stats import stats_table
from cotdistill.distill.store import load_kept, load_records
from cotdistill.errors import ConfigError
from cotdistill.tasks import Example, get_task
from cotdistill.teachers import CompletionRequest, CompletionResult, TeacherConfig


def questions(n: int = 4) -> list[Example]:
    return get_task("arith_shopping").examples("train", n, 0) + get_task("coin_flip").examples("train", n, 0)


class ScriptedTeacher:
    """Answers request i of question q with ``script(request, i)``; records every request."""

    id = "scripted"

    def __init__(self, script):
        self.script = script
        self.requests: list[CompletionRequest] = []

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        self.requests.extend(requests)
        out = []
        for request in requests:
            texts = [self.script(request, i) for i in range(request.n)]
            if any(t is None for t in texts):
                out.append(CompletionResult(request.key, [], error="scripted failure"))
            else:
                usage = {"prompt_tokens": 10, "completion_tokens": 5 * request.n, "total_tokens": 10 + 5 * request.n}
                out.append(CompletionResult(request.key, texts, usage=usage, latency_s=0.5))
        return out


def test_oracle_run_keeps_every_gold_rationale(tmp_path):
    examples = questions()
    stats = generate_rationales(GenerateConfig(k=1), examples, tmp_path, show_progress=False)
    kept = load_kept(tmp_path / "rationales.jsonl")
    assert [k.meta["example_id"] for k in kept] == [e.id for e in examples]
    assert all(k.rationale == e.rationale and k.answer == e.answer for k, e in zip(kept, examples))
    assert stats["total"]["asked"] == 8 and stats["total"]["kept"] == 8 and stats["total"]["accuracy"] == 1.0
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    table = stats_table(stats)
    assert "arith_shopping" in table and "coin_flip" in table and table.splitlines()[-1].startswith("total")
    record = load_records(tmp_path / "rationales.jsonl")[0]
    assert record.teacher == "oracle" and len(record.prompt_hash) == 16
    assert record.sampling["k"] == 1 and record.sampling["num_shots"] == 3


def wrong_then_right(request: CompletionRequest, i: int) -> str:
    gold = request.subject.answer
    if request.key.endswith(":hint"):
        return f"Because of the steps, the result follows. The answer is {gold}."
    if request.subject.domain == "coin_flip":
        return "I guess. The answer is maybe."
    return f"Step {i}. The answer is {gold}." if i == 1 else "Oops. The answer is 123456."


def test_policies_rationalisation_and_token_accounting(tmp_path):
    examples = questions(3)
    teacher = ScriptedTeacher(wrong_then_right)
    cfg = GenerateConfig(teacher=TeacherConfig(), k=2, temperature=0.7, rationalize=True)
    stats = generate_rationales(cfg, examples, tmp_path, teacher=teacher, show_progress=False)
    records = {r.key: r for r in load_records(tmp_path / "rationales.jsonl")}
    arith, coin = examples[0], examples[3]
    assert records[(arith.id, 0)].reason == "wrong answer" and not records[(arith.id, 0)].kept
    assert records[(arith.id, 1)].kept and records[(arith.id, 1)].correct
    assert (arith.id, 2) not in records  # a correct sample exists: no rationalisation
    assert records[(coin.id, 0)].reason == "no answer found"
    hinted = records[(coin.id, 2)]
    assert hinted.rationalized and hinted.kept and hinted.reason == "correct (rationalized)"
    assert hinted.sampling["hint"] and hinted.prompt_hash != records[(coin.id, 0)].prompt_hash
    hint_requests = [r for r in teacher.requests if r.key.endswith(":hint")]
    assert len(hint_requests) == 3 and all(r.messages[-1]["content"].count("Hint") == 1 for r in hint_requests)
    arith_stats, coin_stats = stats["domains"]["arith_shopping"], stats["domains"]["coin_flip"]
    assert arith_stats["accuracy"] == 0.5 and arith_stats["kept"] == 3 and arith_stats["questions_kept"] == 3
    assert coin_stats["accuracy"] == 0.0 and coin_stats["answered"] == 3 and coin_stats["rationalized_kept"] == 3
    # 3 questions x (base request: 10 prompt + 10 completion) for arith; coin adds the hint requests
    assert arith_stats["prompt_tokens"] == 30 and arith_stats["completion_tokens"] == 30
    assert coin_stats["prompt_tokens"] == 60 and coin_stats["completion_tokens"] == 45
    assert arith_stats["teacher_s"] == pytest.approx(1.5)


def test_majority_policy_on_unlabelled_questions(tmp_path):
    unlabelled = [Example(f"u{i}", "arith_shopping", f"What is {i} + {i}?", "") for i in range(3)]
    votes = ["The answer is 4.", "So. The answer is 4.", "The answer is 5."]
    teacher = ScriptedTeacher(lambda request, i: votes[i])
    cfg = GenerateConfig(k=3, temperature=1.0, keep="majority", num_shots=0)
    stats = generate_rationales(cfg, unlabelled, tmp_path, teacher=teacher, show_progress=False)
    kept = load_kept(tmp_path)
    assert len(kept) == 6 and {k.answer for k in kept} == {"4"}
    assert stats["total"]["accuracy"] is None and stats["total"]["kept"] == 6


def test_resume_retries_failures_and_skips_finished_work(tmp_path):
    examples = questions(3)
    failing = ScriptedTeacher(
        lambda request, i: None if request.subject.domain == "coin_flip" else f"{i}. The answer is 1."
    )
    cfg = GenerateConfig(k=2, temperature=0.5, keep="all", batch_size=2)
    first = generate_rationales(cfg, examples, tmp_path, teacher=failing, show_progress=False)
    assert first["domains"]["coin_flip"]["errors"] == 6 and first["domains"]["coin_flip"]["kept"] == 0
    failed = [r for r in load_records(tmp_path / "rationales.jsonl") if r.error]
    assert len(failed) == 6 and all(r.reason == "error: scripted failure" for r in failed)

    healthy = ScriptedTeacher(lambda request, i: f"Fine {i}. The answer is heads.")
    second = generate_rationales(cfg, examples, tmp_path, teacher=healthy, show_progress=False)
    assert {r.subject.domain for r in healthy.requests} == {"coin_flip"}  # only the failed questions again
    records = load_records(tmp_path / "rationales.jsonl")
    assert len(records) == 12 and len({r.key for r in records}) == 12 and not any(r.error for r in records)
    assert second["total"]["errors"] == 0 and second["total"]["kept"] == 12

    third = ScriptedTeacher(lambda request, i: "unused")
    generate_rationales(cfg, examples, tmp_path, teacher=third, show_progress=False)
    assert third.requests == []


def test_duplicate_question_ids_are_refused(tmp_path):
    examples = questions(1)
    with pytest.raises(ConfigError, match="appears twice"):
        generate_rationales(GenerateConfig(), examples + examples[:1], tmp_path, show_progress=False)


def test_resuming_with_other_sampling_settings_is_refused(tmp_path):
    examples = questions(1)
    generate_rationales(GenerateConfig(k=1), examples, tmp_path, show_progress=False)
    with pytest.raises(ConfigError, match=r"other settings \(k: 1 -> 2\)"):
        generate_rationales(GenerateConfig(k=2), examples, tmp_path, show_progress=False)
    # the teacher and batch size may change between runs
    generate_rationales(GenerateConfig(k=1, batch_size=7), examples, tmp_path, show_progress=False)


def test_failed_questions_are_retried_not_rationalised(tmp_path):
    examples = questions(2)
    teacher = ScriptedTeacher(lambda request, i: None)
    cfg = GenerateConfig(k=2, temperature=0.5, rationalize=True, max_failure_rate=1.0)
    stats = generate_rationales(cfg, examples, tmp_path, teacher=teacher, show_progress=False)
    assert not any(r.key.endswith(":hint") for r in teacher.requests)
    assert stats["total"]["errors"] == 8 and stats["total"]["kept"] == 0
