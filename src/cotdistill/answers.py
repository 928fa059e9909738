"""Answer extraction and normalisation, shared by evaluation and by RL rewards.

Two scores for every prediction:

* **strict**: the answer must be stated in a recognised answer sentence
  (``The answer is X``, ``#### X`` or ``\\boxed{X}``; the last one wins);
* **flexible**: falls back to the last answer-shaped span anywhere in the text
  (last number, last list, last yes/no, last label word).

Both compare the *normalised* extracted answer with the normalised gold answer. The answer
sentence ends at its first full stop followed by a space, so a number in a later sentence never
counts as the stated answer. A choice letter counts only where it stands as an option (``A``,
``(A)``, ``A)``, ``A.``, ``option A``; in running text only capital letters), and with the
options' texts given, stating an option's text picks its letter. Yes/no answers accept true/false.

``harness_gsm8k`` scores a prediction with lm-evaluation-harness's two GSM8K filters
(``strict-match``: the first ``#### N``; ``flexible-extract``: the last number) and its
exact-match normalisation, so figures can be set next to published ones.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction

ANSWER_PREFIX = "The answer is"

# The tail is captured in a lookahead so that a later marker on the same line is still found.
_ANSWER_SENTENCE = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*:|answer\s*:)\s*:?\s*(?=(.+))", re.IGNORECASE
)
_HASHES = re.compile(r"####\s*(?=(.+))")
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\s?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?%?")
_LIST = re.compile(r"\[[^\[\]]*\]")
# A letter standing as an option. At the start of an answer sentence: option A, (A), A), A., a bare
# capital, or a lone small letter. In running text only capitals, and a bare one not before a word.
_CHOICE_AT_START = re.compile(
    r"\s*\**\s*(?:(?i:option)\s+(?P<a>[A-Ea-e])\b|\((?P<b>[A-Ea-e])\)|(?P<c>[A-Ea-e])[.)](?!\w)"
    r"|(?P<d>[A-E])(?![\w'])|(?P<e>[a-e])\s*$)"
)
_CHOICE_IN_TEXT = re.compile(
    r"(?i:option)\s+(?P<a>[A-E])\b|\((?P<b>[A-E])\)|(?<![\w'])(?P<c>[A-E])[.)](?!\w)"
    r"|(?<![\w'])(?P<d>[A-E])(?![\w'])(?!\s+[a-z])"
)
_YESNO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_YESNO_CANONICAL = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_SENTENCE_END = re.compile(r"[.!?](?=\s)")
CHOICE_LETTERS = "ABCDE"


class AnswerType(StrEnum):
    """How a task's answers are extracted and compared."""

    NUMBER = "number"
    CHOICE = "choice"  # a multiple-choice letter A-E
    YESNO = "yesno"
    LIST = "list"  # a Python list literal
    LABEL = "label"  # one of a closed set of words given by ``Task.labels``
    TEXT = "text"  # a free string compared after normalisation


@dataclass(frozen=True)
class Score:
    """Result of scoring one prediction. ``extracted`` is the flexible extraction (or None)."""

    strict: bool
    flexible: bool
    extracted: str | None
    extracted_strict: str | None


def answer_sentence(answer: str) -> str:
    """The canonical closing sentence every oracle rationale and prompt asks for."""
    return f"{ANSWER_PREFIX} {answer}."


def instruction(answer_type: AnswerType | str, labels: Sequence[str] = ()) -> str:
    """One sentence telling a model how to state its final answer."""
    kind = _kind(answer_type)
    shape = {
        AnswerType.NUMBER: "a number",
        AnswerType.CHOICE: "a letter",
        AnswerType.YESNO: "yes or no",
        AnswerType.LIST: "a Python list",
        AnswerType.LABEL: " or ".join(labels) if labels else "a word",
        AnswerType.TEXT: "a short phrase",
    }[kind]
    return f'Think step by step, then finish with "{ANSWER_PREFIX} X." where X is {shape}.'


def _kind(answer_type: AnswerType | str) -> str:
    return answer_type.value if hasattr(answer_type, "value") else str(answer_type)


# --------------------------------------------------------------------------- normalisation


def normalize_number(text: str) -> str | None:
    """Canonical decimal string for a number written with commas, $, %, .0, or a fraction."""
    cleaned = text.strip().replace("−", "-").replace(",", "").replace("$", "").replace("%", "")
    cleaned = cleaned.replace(" ", "").rstrip(".")
    if not cleaned:
        return None
    try:
        if "/" in cleaned:
            value = Fraction(cleaned)
            if value.denominator == 1:
                return str(value.numerator)
            return _decimal_str(Decimal(value.numerator) / Decimal(value.denominator))
        return _decimal_str(Decimal(cleaned))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _decimal_str(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_list(text: str) -> str | None:
    """Canonical form of a Python list literal (``[1, 2]``; strings keep their quotes)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        inner = text.strip()
        if not (inner.startswith("[") and inner.endswith("]")):
            return None
        parts = [p.strip().strip("'\"") for p in inner[1:-1].split(",") if p.strip()]
        return "[" + ", ".join(parts) + "]"
    if not isinstance(value, (list, tuple)):
        return None
    return "[" + ", ".join(_list_item(v) for v in value) + "]"


def _list_item(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)


def normalize_text(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize(
    answer: str, answer_type: AnswerType | str, labels: Sequence[str] = (), options: Sequence[str] = ()
) -> str | None:
    """Normalise an answer string of the given type; None when it is not of that shape.

    ``options`` are the texts of a choice question's options (A, B, ...): a choice answer that
    states an option's text instead of its letter normalises to that letter.
    """
    kind = _kind(answer_type)
    answer = answer.strip()
    if kind == AnswerType.NUMBER:
        match = _NUMBER.search(answer)
        return normalize_number(match.group(0)) if match else None
    if kind == AnswerType.LIST:
        match = _LIST.search(answer)
        return normalize_list(match.group(0)) if match else None
    if kind == AnswerType.CHOICE:
        return _choice_at_start(answer) or _option_by_text(answer, options)
    if kind == AnswerType.YESNO:
        match = _YESNO.search(answer)
        return _YESNO_CANONICAL[match.group(1).lower()] if match else None
    if kind == AnswerType.LABEL:
        return _find_label(answer, labels, last=False)
    return normalize_text(answer) or None


def _letter(match: re.Match[str]) -> str:
    return next(value for value in match.groupdict().values() if value).upper()


def _choice_at_start(text: str) -> str | None:
    match = _CHOICE_AT_START.match(text)
    return _letter(match) if match else None


def _option_by_text(text: str, options: Sequence[str]) -> str | None:
    """The letter of the option whose text ``text`` states (exactly, else as the only one it contains)."""
    said = normalize_text(text)
    if not said or not options:
        return None
    texts = [normalize_text(option) for option in options]
    exact = [i for i, t in enumerate(texts) if t and t == said]
    if exact:
        return CHOICE_LETTERS[exact[0]]
    contained = [i for i, t in enumerate(texts) if t and re.search(rf"(?<!\w){re.escape(t)}(?!\w)", said)]
    longest = max((len(texts[i]) for i in contained), default=0)
    best = [i for i in contained if len(texts[i]) == longest]
    return CHOICE_LETTERS[best[0]] if len(best) == 1 else None


def _find_label(text: str, labels: Sequence[str], *, last: bool) -> str | None:
    if not labels:
        return normalize_text(text) or None
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(lab) for lab in sorted(labels, key=len, reverse=True)) + r")\b", re.IGNORECASE
    )
    found = pattern.findall(text)
    if not found:
        return None
    return (found[-1] if last else found[0]).lower()


# --------------------------------------------------------------------------- extraction


def _sentence_span(text: str) -> str | None:
    """The text after the last answer marker (answer sentence, ####, or \\boxed{})."""
    candidates: list[tuple[int, str]] = []
    for regex in (_ANSWER_SENTENCE, _HASHES):
        for match in regex.finditer(text):
            candidates.append((match.start(), match.group(1)))
    for match in _BOXED.finditer(text):
        candidates.append((match.start(), match.group(1)))
    if not candidates:
        return None
    start, span = max(candidates, key=lambda c: c[0])
    span = span.split("\n")[0].strip()
    if not text.startswith("\\boxed", start):
        end = _SENTENCE_END.search(span)
        span = span[: end.start() + 1] if end else span
    return span


def answer_span(text: str) -> str | None:
    """The raw (unnormalised) text after the last answer marker, or None when there is none."""
    return _sentence_span(text)


def extract(
    text: str,
    answer_type: AnswerType | str,
    labels: Sequence[str] = (),
    *,
    strict: bool,
    options: Sequence[str] = (),
) -> str | None:
    """Extract and normalise the final answer from a model's output, or None."""
    kind = _kind(answer_type)
    span = _sentence_span(text)
    if span is not None:
        stated = span.rstrip(". ") if kind in (AnswerType.TEXT, AnswerType.CHOICE) else span
        value = normalize(stated, kind, labels, options)
        if value is not None or strict:
            return value
    elif strict:
        return None
    return _extract_flexible(text, kind, labels, options)


def _extract_flexible(text: str, kind: str, labels: Sequence[str], options: Sequence[str]) -> str | None:
    if kind == AnswerType.NUMBER:
        found = _NUMBER.findall(text)
        return normalize_number(found[-1]) if found else None
    if kind == AnswerType.LIST:
        found = _LIST.findall(text)
        return normalize_list(found[-1]) if found else None
    if kind == AnswerType.CHOICE:
        found = list(_CHOICE_IN_TEXT.finditer(text))
        if found:
            return _letter(found[-1])
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return _option_by_text(lines[-1], options) if lines else None
    if kind == AnswerType.YESNO:
        found = _YESNO.findall(text)
        return _YESNO_CANONICAL[found[-1].lower()] if found else None
    if kind == AnswerType.LABEL:
        return _find_label(text, labels, last=True)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return normalize_text(lines[-1]) if lines else None


def score(
    prediction: str, gold: str, answer_type: AnswerType | str, labels: Sequence[str] = (), options: Sequence[str] = ()
) -> Score:
    """Score a full model output against a gold answer (strict and flexible)."""
    gold_norm = normalize(gold, answer_type, labels, options)
    strict_value = extract(prediction, answer_type, labels, strict=True, options=options)
    flexible_value = extract(prediction, answer_type, labels, strict=False, options=options)
    return Score(
        strict=gold_norm is not None and strict_value == gold_norm,
        flexible=gold_norm is not None and flexible_value == gold_norm,
        extracted=flexible_value,
        extracted_strict=strict_value,
    )


# --------------------------------------------------------------------------- lm-evaluation-harness GSM8K

_HARNESS_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_HARNESS_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_HARNESS_IGNORE = (re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$"))
HARNESS_INVALID = "[invalid]"


def _harness_clean(text: str) -> str:
    for regex in _HARNESS_IGNORE:
        text = regex.sub("", text)
    return text.strip().lower()


def harness_gsm8k(prediction: str, gold: str) -> dict[str, bool]:
    """lm-evaluation-harness GSM8K: ``{"gsm8k_strict_match": ..., "gsm8k_flexible_extract": ...}``.

    Filters as in its ``gsm8k.yaml`` (strict: first ``#### (-?[0-9.,]+)``; flexible: last match
    of ``(-?[$0-9.,]{2,})|(-?[0-9]+)``; no match is ``[invalid]``), then its ``exact_match``
    (ignore case; drop ``,``, ``$``, everything up to ``#### `` and a final ``.``).
    """
    strict = _HARNESS_STRICT.search(prediction)
    flexible = _HARNESS_FLEXIBLE.findall(prediction)
    extracted = {
        "gsm8k_strict_match": strict.group(1) if strict else HARNESS_INVALID,
        "gsm8k_flexible_extract": next(g for g in flexible[-1] if g) if flexible else HARNESS_INVALID,
    }
    target = _harness_clean(gold)
    return {name: _harness_clean(value) == target for name, value in extracted.items()}
