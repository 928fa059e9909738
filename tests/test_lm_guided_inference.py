"""Self-consistency voting and the evaluation table over reasoner conditions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cotdistill.methods.lm_guided.data import guided_example, query
from cotdistill.methods.lm_guided.inference import (
    Condition,
    evaluate,
    fixed_writer,
    majority_vote,
    paired_difference,
    paired_table,
    score_rows,
    table,
)
from cotdistill.methods.lm_guided.reasoner import Reasoner
from cotdistill.report.table import markdown_table
from cotdistill.tasks import Example, get_task
from cotdistill.teachers import CompletionRequest, CompletionResult


def test_majority_vote_normalises_and_breaks_ties_by_order():
    assert majority_vote(["The Paris", "paris!", "Rome"]) == "paris"
    assert majority_vote(["Rome", "Paris", "paris", "rome"]) == "rome"
    assert majority_vote([None, "", "Lodz"]) == "lodz"
    assert majority_vote([None, ""]) == ""


def test_score_rows_per_type():
    examples = [
        Example("a", "d", "q", "Ann Smith", meta={"type": "bridge"}),
        Example("b", "d", "q", "1900", meta={"type": "comparison"}),
    ]
    scores = score_rows(["ann smith", "1901"], examples)
    assert list(scores) == ["all", "bridge", "comparison"]
    assert {k: scores["bridge"][k] for k in ("em", "f1", "n")} == {"em": 1.0, "f1": 1.0, "n": 1}
    assert scores["all"]["em"] == 0.5
    assert scores["all"]["em_ci"]["mean"] == 0.5 and scores["all"]["em_ci"]["low"] == 0.0
    assert scores["all"]["em_ci"]["high"] == 1.0 and scores["bridge"]["f1_ci"] == {"mean": 1.0, "low": 1.0, "high": 1.0}


def test_paired_difference_is_question_by_question():
    examples = [Example(str(i), "d", "q", "x", meta={"type": "bridge" if i < 20 else "comparison"}) for i in range(40)]
    first = ["x"] * 30 + ["y"] * 10  # right on 30
    second = ["y"] * 10 + ["x"] * 30  # right on 30, but on other questions
    paired = paired_difference(first, second, examples)
    assert paired["all"]["n"] == 40 and paired["all"]["em"]["mean"] == 0.0
    assert paired["all"]["em"]["low"] < 0.0 < paired["all"]["em"]["high"]
    assert paired["bridge"]["em"]["mean"] == 0.5 and paired["bridge"]["em"]["low"] > 0.0  # 10 of 20 gained, none lost
    assert paired["comparison"]["em"]["mean"] == -0.5 and paired["comparison"]["em"]["high"] < 0.0


class EchoReasoner:
    """Reasoner backend: with a rationale it answers the rationale's first word; alone it samples
    the gold answer only on odd sample indices (so voting over 3 samples picks 'wrong')."""

    id = "echo"

    def __init__(self, gold: dict[str, str]):
        self.gold = gold
        self.requests: list[CompletionRequest] = []

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        self.requests += requests
        out = []
        for r in requests:
            text = r.messages[0]["content"]
            question = text.split("Question: ")[1].split("\n")[0]
            if text.endswith("Reasoning:"):  # own CoT
                texts = [f"Thinking. The answer is {self.gold[question]}."] * r.n
            elif "\nReasoning: " in text:  # guided: echo the rationale's first word
                texts = [text.split("\nReasoning: ")[1].split()[0]] * r.n
            else:
                texts = ["wrong" if i % 2 == 0 else self.gold[question] for i in range(r.n)]
            out.append(CompletionResult(r.key, texts))
        return out


def test_evaluate_conditions_with_self_consistency():
    examples = get_task("multihop").examples("test", 4, seed=0)
    reasoner = Reasoner(EchoReasoner({e.question: e.answer for e in examples}))
    gold_by_prompt = {guided_example(e).question: e.answer for e in examples}

    def good_writer(prompts: list[str], n: int, temperature: float) -> list[list[str]]:
        # greedy rationale is wrong, 2 of every 3 sampled rationales lead to the gold answer
        if n == 1:
            return [["nonsense here"] for _ in prompts]
        return [[f"{gold_by_prompt[p]} ok" if i % 3 else "nonsense" for i in range(n)] for p in prompts]

    conditions = [Condition("reasoner alone"), Condition("reasoner CoT", own_cot=True), Condition("KD", good_writer)]
    queries = [query(e) for e in examples]
    prompts = [guided_example(e).question for e in examples]
    result = evaluate(conditions, examples, queries, prompts, reasoner, k=3, paired=("KD", "reasoner alone"))
    got = {(r["condition"], r["self_consistency"]): r["scores"]["all"]["em"] for r in result["rows"]}
    multi_word = any(" " in e.answer for e in examples)
    assert got[("reasoner alone", False)] == 0.0 and got[("reasoner alone", True)] == 0.0
    assert got[("reasoner CoT", False)] == 1.0 and got[("reasoner CoT", True)] == 1.0
    assert got[("KD", False)] == 0.0
    # the echo reasoner answers only the first word of a rationale
    assert got[("KD", True)] == (sum(" " not in e.answer for e in examples) / 4 if multi_word else 1.0)
    assert len(result["examples"]) == 12
    assert result["paired"]["first"] == "KD" and result["paired"]["greedy"]["all"]["em"]["mean"] == 0.0
    assert result["paired"]["sc"]["all"]["em"]["mean"] == got[("KD", True)] - got[("reasoner alone", True)]
    assert "[" in paired_table(result["paired"])[1][0][2]
    headers, body = table(result["rows"])
    assert headers[:4] == ["condition", "SC", "EM all", "F1 all"] and body[1][1] == "k=3"
    assert markdown_table(headers, body).count("\n") == len(body) + 1
    # a second evaluation is served from the reasoner cache
    before = len(reasoner.teacher.requests)
    evaluate(conditions, examples, queries, prompts, reasoner, k=3)
    assert len(reasoner.teacher.requests) == before


def test_fixed_writer_gives_each_question_its_own_rationale():
    examples = get_task("multihop").examples("test", 3, seed=1)
    reasoner = Reasoner(EchoReasoner({e.question: e.answer for e in examples}))
    # rationales that start with the gold answer's first word: the echo reasoner answers it
    gold = fixed_writer([f"{e.answer.split()[0]} because" for e in examples])
    assert gold(["a", "b", "c"], 2, 0.7) == [[f"{e.answer.split()[0]} because"] * 2 for e in examples]
    result = evaluate([Condition("gold", gold)], examples, [query(e) for e in examples], ["a", "b", "c"], reasoner, k=2)
    want = sum(" " not in e.answer for e in examples) / 3
    assert [r["scores"]["all"]["em"] for r in result["rows"]] == [want, want]
    with pytest.raises(ValueError, match="1 questions for 3"):
        gold(["a"], 1, 0.0)
