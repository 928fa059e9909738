"""The frozen reasoner: batching, in-memory and on-disk caching, answer parsing, the rewarder."""

from __future__ import annotations

from collections.abc import Sequence

from cotdistill.methods.lm_guided.reasoner import Query, Reasoner, ReasonerConfig, rating, short_answer
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.teachers import CompletionRequest, CompletionResult


class ScriptedTeacher:
    """Answers with the word after 'Reasoning:' (else 'unknown'); rates '4'; records every batch."""

    id = "scripted"

    def __init__(self):
        self.batches: list[list[CompletionRequest]] = []

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        self.batches.append(list(requests))
        results = []
        for request in requests:
            text = request.messages[0]["content"] if request.messages else request.prompt
            if "Rate the" in text:
                reply = "4"
            elif "FAIL" in text:
                results.append(CompletionResult(request.key, [], error="boom"))
                continue
            elif "Reasoning:" in text:
                reply = text.split("Reasoning:")[1].split()[0] + "\nmore"
            else:
                reply = "unknown"
            results.append(CompletionResult(request.key, [reply] * request.n))
        return results


def test_second_call_hits_the_cache_without_calling_the_reasoner(tmp_path):
    teacher = ScriptedTeacher()
    cache = tmp_path / "cache.jsonl"
    reasoner = Reasoner(teacher, cache_path=cache)
    queries = [Query("Q1?", "ctx", "Lodz because"), Query("Q2?", "ctx", None), Query("Q1?", "ctx", "Lodz because")]
    assert reasoner.answer(queries) == [["Lodz"], ["unknown"], ["Lodz"]]
    assert len(teacher.batches) == 1 and len(teacher.batches[0]) == 2  # one batch, duplicates merged
    assert reasoner.answer(queries[:2]) == [["Lodz"], ["unknown"]]
    assert len(teacher.batches) == 1
    reasoner.close()

    again = Reasoner(teacher, cache_path=cache)  # a rerun reads the on-disk cache
    assert again.answer(queries[:2]) == [["Lodz"], ["unknown"]]
    assert len(teacher.batches) == 1 and again.stats["hits"] == 2
    # a different rationale for the same question is a new request
    assert again.answer([Query("Q1?", "ctx", "Paris since")]) == [["Paris"]]
    assert len(teacher.batches) == 2
    again.close()


def test_failed_requests_are_not_cached_and_give_none():
    teacher = ScriptedTeacher()
    reasoner = Reasoner(teacher, ReasonerConfig(chat=False))
    assert reasoner.answer([Query("FAIL?", "ctx", "x")]) == [None]
    assert reasoner.answer([Query("FAIL?", "ctx", "x")]) == [None]
    assert len(teacher.batches) == 2 and reasoner.stats["errors"] == 2
    assert teacher.batches[0][0].prompt is not None  # plain prompts when chat is off


def test_answer_and_rating_parsing():
    assert short_answer("The answer is Lodz.\nblah") == "lodz"
    assert short_answer("  Lodz.\nThe city") == "Lodz"
    assert short_answer("") == ""
    assert rating("I give it 5/5") == 1.0 and rating("1") == 0.0 and rating("great") is None


def test_rewarder_components_and_trl_funcs():
    teacher = ScriptedTeacher()
    weights = {"exact_match": 1.0, "consistency": 0.5, "judge": 0.25, "length": 0.0}
    rewarder = Rewarder(Reasoner(teacher), RewardConfig(weights=weights, judge_aspects=["factuality", "coherence"]))
    completions = ["Lodz is it. The answer is Lodz.", "Paris is it. The answer is Rome."]
    columns = {"question": ["Q?", "Q?"], "context": ["c", "c"], "answer": ["Lodz", "Lodz"], "supporting": [[], []]}
    components = rewarder.score(completions, **columns)
    assert set(components) == {"exact_match", "consistency", "judge"}
    assert components["exact_match"] == [1.0, 0.0]
    assert components["consistency"] == [1.0, 0.0]
    assert components["judge"] == [0.75, 0.75]
    assert rewarder.total(components) == [1.0 + 0.5 + 0.1875, 0.1875]
    calls = len(teacher.batches)
    funcs = rewarder.trl_reward_funcs()
    assert [f.__name__ for f in funcs] == ["exact_match", "consistency", "judge"]
    assert rewarder.weights() == [1.0, 0.5, 0.25]
    got = [f(prompts=["p", "p"], completions=completions, trainer_state=None, **columns) for f in funcs]
    assert got == [components["exact_match"], components["consistency"], components["judge"]]
    assert len(teacher.batches) == calls  # all served from the cache
