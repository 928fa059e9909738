"""Keep policies, dedupe and the few-shot prompt templates."""

from __future__ import annotations

from cotdistill.distill.filtering import Sample, decide
from cotdistill.distill.prompts import PLAIN_STOP, build_prompt, select_shots, shot_candidates
from cotdistill.tasks import Example


def s(index, text, prediction, correct=None, error=None, rationalized=False):
    return Sample(index, text, prediction, correct, error, rationalized)


def test_correct_policy_keeps_matches_and_dedupes():
    samples = [
        s(0, "1 + 1 = 2. The answer is 2.", "2", True),
        s(1, "1 + 1 = 3. The answer is 3.", "3", False),
        s(2, "1 + 1 =  2.\nThe answer is 2.", "2", True),  # same text up to whitespace
        s(3, "", None, None, error="HTTP 500"),
        s(4, "no idea", None, False),
    ]
    verdicts = decide(samples, "correct", has_gold=True)
    assert [v.kept for v in verdicts] == [True, False, False, False, False]
    assert [v.reason for v in verdicts] == [
        "correct",
        "wrong answer",
        "duplicate of sample 0",
        "error: HTTP 500",
        "no answer found",
    ]
    assert [v.kept for v in decide(samples, "correct", has_gold=True, dedupe=False)] == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_majority_vote_without_gold_and_min_votes():
    samples = [s(0, "a. The answer is 5.", "5"), s(1, "b. The answer is 7.", "7"), s(2, "c. The answer is 5.", "5")]
    verdicts = decide(samples, "majority", has_gold=False)
    assert [v.kept for v in verdicts] == [True, False, True]
    assert verdicts[0].reason == "majority (2/3 votes)"
    assert "majority '5'" in verdicts[1].reason
    assert not any(v.kept for v in decide(samples, "majority", has_gold=False, min_votes=3))
    # `correct` without a gold answer falls back to the vote
    assert [v.kept for v in decide(samples, "correct", has_gold=False)] == [True, False, True]
    # ties go to the answer seen first
    tie = [s(0, "x", "7"), s(1, "y", "5")]
    assert [v.kept for v in decide(tie, "majority", has_gold=False)] == [True, False]


def test_all_policy_keeps_everything_but_errors_and_empties():
    samples = [s(0, "text", None), s(1, " ", None), s(2, "", None, error="timeout")]
    assert [v.kept for v in decide(samples, "all", has_gold=True)] == [True, False, False]


def test_rationalized_samples_are_marked_and_do_not_vote():
    samples = [
        s(0, "wrong. The answer is 3.", "3", False),
        s(1, "hinted. The answer is 2.", "2", True, rationalized=True),
    ]
    verdicts = decide(samples, "correct", has_gold=True)
    assert [v.reason for v in verdicts] == ["wrong answer", "correct (rationalized)"]


def ex(i, rationale="r. The answer is 1."):
    return Example(f"d-{i}", "d", f"question {i}?", "1", rationale)


def test_shots_are_fixed_per_domain_and_never_the_question():
    pool = [ex(i) for i in range(6)] + [ex(9, rationale=None)]
    candidates = shot_candidates(pool, 2, seed=0)
    assert len(candidates) == 3 and all(e.rationale for e in candidates)
    first = select_shots(candidates, 2, exclude_id="nope")
    assert first == candidates[:2]
    assert select_shots(candidates, 2, exclude_id=first[0].id) == [candidates[1], candidates[2]]
    assert select_shots(candidates, 0, exclude_id="x") == []


def test_chat_and_plain_prompts():
    shots = [ex(1), ex(2)]
    chat = build_prompt("What is 1?", "Finish with 'The answer is X.'", shots, style="chat")
    assert chat.prompt is None and chat.stop is None
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "Finish with 'The answer is X.'" in chat.messages[0]["content"]
    assert chat.messages[2]["content"] == "r. The answer is 1." and chat.messages[-1]["content"] == "What is 1?"
    plain = build_prompt("What is 1?", "Finish.", shots, style="plain")
    assert plain.messages is None and plain.stop == PLAIN_STOP
    assert plain.prompt.endswith("Question: What is 1?\nAnswer:")
    assert "Question: question 1?\nAnswer: r. The answer is 1." in plain.prompt
    hinted = build_prompt("What is 1?", "Finish.", shots, style="plain", hint="1")
    assert "the correct answer is 1" in hinted.prompt and hinted.hash != plain.hash
    assert build_prompt("What is 1?", "Finish.", shots, style="plain").hash == plain.hash
