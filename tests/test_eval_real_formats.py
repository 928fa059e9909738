"""Evaluation on file domains: batching across domains, few-shot prompts, chance n/a, per-type and harness metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from cotdistill.eval import EvalConfig, evaluate
from cotdistill.eval.fewshot import draw_shots, few_shot_question
from cotdistill.report.render import render_eval
from cotdistill.tasks import get_task
from doubles import ScriptedStudent

FIXTURES = Path(__file__).parent / "fixtures"


def _file(task: str, path: Path):
    return get_task(task, {"path": str(path), "split_files": {"test": str(path)}})


def test_small_domains_share_batches_and_open_answers_have_no_chance(tmp_path: Path) -> None:
    gsm = _file("gsm8k", FIXTURES / "gsm8k" / "test.jsonl")
    acre = _file("acre_file", FIXTURES / "redis" / "acre_test.jsonl")
    data = {f"gsm{i}": gsm.examples("test", -1, seed=i)[:1] for i in range(6)} | {"acre": acre.examples("test", -1, 0)}
    tasks = {d: gsm for d in data if d.startswith("gsm")} | {"acre": acre}
    roles = dict.fromkeys(data, "source")
    right = {e.question: e.answer for examples in data.values() for e in examples}
    student = ScriptedStudent(right)
    report = evaluate(
        student,
        data,
        roles,
        EvalConfig(batch_size=16, bootstrap_resamples=50),
        tmp_path,
        tasks=tasks,
        show_progress=False,
    )
    assert len(student.calls) == 1 and len(student.calls[0]) == 6 + 8  # one batch for all 7 domains
    domains = report["summary"]["domains"]
    assert domains["gsm0"]["chance"] is None and domains["acre"]["chance"] == pytest.approx(0.375)
    assert domains["gsm0"]["metrics"]["gsm8k_strict_match"]["mean"] == 1.0
    assert set(domains["acre"]["by_type"]) == {"direct", "indirect", "screen_off", "potential"}
    assert domains["acre"]["by_type"]["direct"]["n"] == 3
    markdown = render_eval(report)
    assert "| gsm0 | source | 1 |" in markdown and "n/a" in markdown
    assert "gsm8k_flexible_extract" in markdown and "Accuracy per question type" in markdown


def test_shots_are_drawn_from_the_pool_never_the_question(tmp_path: Path) -> None:
    gsm = _file("gsm8k", FIXTURES / "gsm8k" / "test.jsonl")
    pool = gsm.examples("test", -1, seed=0)
    asked = pool[0]
    shots = draw_shots(asked, pool, 3)
    assert len(shots) == 3 and asked not in shots and shots == draw_shots(asked, pool, 3)
    text = few_shot_question(asked, pool, 3)
    assert text.count("Q: ") == 4 and text.endswith(f"Q: {asked.question}")
    assert shots[0].rationale in text  # a shot shows its worked solution ending in the answer sentence
    assert few_shot_question(asked, pool, 0) == asked.question
    student = ScriptedStudent({e.question: e.answer for e in pool})
    cfg = EvalConfig(shots=2, bootstrap_resamples=50)
    report = evaluate(
        student, {"gsm8k": pool}, {"gsm8k": "source"}, cfg, tmp_path, tasks={"gsm8k": gsm}, show_progress=False
    )
    assert all(prompt.count("Q: ") == 3 for prompt in student.calls[0])
    assert report["summary"]["domains"]["gsm8k"]["strict"]["mean"] == 1.0 and report["config"]["shots"] == 2
