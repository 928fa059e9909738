"""Answer extraction round-trips what oracle rationales write, for every answer type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cotdistill import answers

SETTINGS = settings(max_examples=150, deadline=None)

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_filler = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,\n", max_size=60)


def _both(text: str, gold: str, kind: str, labels: tuple[str, ...] = ()) -> answers.Score:
    return answers.score(text, gold, kind, labels)


@SETTINGS
@given(value=st.integers(-(10**9), 10**9), filler=_filler)
def test_integers_round_trip(value: int, filler: str) -> None:
    text = f"{filler} {answers.answer_sentence(str(value))}"
    assert answers.extract(text, "number", strict=True) == str(value)
    score = _both(text, str(value), "number")
    assert score.strict and score.flexible


@SETTINGS
@given(value=st.decimals(min_value=-10000, max_value=10000, places=3, allow_nan=False, allow_infinity=False))
def test_decimals_round_trip(value) -> None:
    gold = format(value, "f")
    assert _both(answers.answer_sentence(gold), gold, "number").strict


@SETTINGS
@given(value=st.integers(1000, 10**9))
def test_number_formatting_is_normalised(value: int) -> None:
    gold = str(value)
    assert _both(f"The answer is ${value:,}.", gold, "number").strict
    assert _both(f"blah #### {value}", gold, "number").strict
    assert _both(f"so \\boxed{{{value}}}", gold, "number").strict
    assert _both(f"The answer is {value}.0", gold, "number").strict
    assert _both(f"the result is {value} apples", gold, "number").flexible
    assert not _both(f"the result is {value} apples", gold, "number").strict


@SETTINGS
@given(items=st.lists(st.integers(-99, 99), max_size=8))
def test_int_lists_round_trip(items: list[int]) -> None:
    gold = str(items)
    score = _both(f"Apply the rule. {answers.answer_sentence(gold)}", gold, "list")
    assert score.strict and score.flexible
    assert _both(answers.answer_sentence(str(items + [100])), gold, "list").strict is False


@SETTINGS
@given(items=st.lists(_words, min_size=1, max_size=5))
def test_string_lists_round_trip(items: list[str]) -> None:
    gold = str(items)
    assert _both(answers.answer_sentence(gold), gold, "list").strict


@SETTINGS
@given(label=st.sampled_from(["on", "off", "undetermined"]), filler=_filler)
def test_labels_round_trip(label: str, filler: str) -> None:
    labels = ("on", "off", "undetermined")
    text = f"{filler} {answers.answer_sentence(label)}"
    assert answers.extract(text, "label", labels, strict=True) == label
    assert _both(text, label, "label", labels).strict


@SETTINGS
@given(answer=st.sampled_from(["yes", "no"]), filler=_filler)
def test_yes_no_round_trip(answer: str, filler: str) -> None:
    text = f"{filler} {answers.answer_sentence(answer)}"
    assert _both(text, answer, "yesno").strict
    assert _both(text.upper(), answer, "yesno").strict


@SETTINGS
@given(letter=st.sampled_from("ABCDE"))
def test_choices_round_trip(letter: str) -> None:
    assert _both(answers.answer_sentence(letter), letter, "choice").strict
    assert _both(f"The answer is ({letter}).", letter, "choice").strict
    assert _both(f"I pick {letter}) because", letter, "choice").flexible


@SETTINGS
@given(words=st.lists(_words, min_size=1, max_size=4))
def test_text_round_trips(words: list[str]) -> None:
    gold = " ".join(words)
    if answers.normalize_text(gold) == "":  # only articles: nothing left to compare
        return
    text = f"Step one. Step two. {answers.answer_sentence(gold)}"
    assert _both(text, gold, "text").strict


def test_last_answer_sentence_wins_and_missing_one_is_not_strict() -> None:
    text = "The answer is 3. Wait, no. The answer is 5."
    assert answers.extract(text, "number", strict=True) == "5"
    assert answers.extract("no marker, 7 then 9", "number", strict=True) is None
    assert answers.extract("no marker, 7 then 9", "number", strict=False) == "9"


def test_answer_span_is_raw() -> None:
    assert answers.answer_span("x. The answer is Foo, Bar.") == "Foo, Bar."
    assert answers.answer_span("nothing here") is None


@pytest.mark.parametrize(("kind", "labels"), [("number", ()), ("label", ("on", "off")), ("list", ()), ("yesno", ())])
def test_instruction_names_the_answer_shape(kind: str, labels: tuple[str, ...]) -> None:
    sentence = answers.instruction(kind, labels)
    assert answers.ANSWER_PREFIX in sentence
    if labels:
        assert all(label in sentence for label in labels)
