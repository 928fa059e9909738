"""Inference and evaluation: the reasoner answers with or without a rationale, with self-consistency.

Conditions (each greedy and with self-consistency over ``k`` samples + majority vote):

* ``reasoner alone``: question + context only (SC samples k short answers);
* ``reasoner CoT``: the reasoner writes its own chain of thought (SC samples k chains);
* ``reasoner + <name> rationales``: a rationale model (KD or RL) writes the rationale and the
  reasoner answers from it (SC: k sampled rationales, the reasoner answers each, majority vote);
* ``reasoner + gold rationales``: the dataset's own rationale (an upper bound for the rationale
  model: how well the reasoner follows a correct rationale); SC repeats it, so it equals greedy
  up to the reasoner's sampling.

Scores are EM and token F1 (SQuAD normalisation) per question type and overall, each with a
95% bootstrap interval over the questions; ``paired_difference`` compares two conditions
question by question (the mean per-question difference, with its bootstrap interval).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from cotdistill import answers
from cotdistill.console import progress
from cotdistill.eval import scoring
from cotdistill.eval.stats import Interval, bootstrap_ci
from cotdistill.methods.lm_guided.data import RATIONALE_INSTRUCTION, guided_example, query
from cotdistill.methods.lm_guided.reasoner import Query, Reasoner
from cotdistill.methods.lm_guided.rewards import em_score, f1_score
from cotdistill.tasks import Example


@dataclass
class LMGuidedEvalConfig:
    """The final table: self-consistency samples, rationale length, which reference rows to show."""

    k: int = field(default=5, metadata={"help": "samples for self-consistency (majority vote)"})
    max_rationale_tokens: int = field(default=64, metadata={"help": "tokens per rationale at inference"})
    own_cot: bool = field(default=True, metadata={"help": "include the reasoner-with-its-own-CoT rows"})
    gold: bool = field(
        default=True, metadata={"help": "include the reasoner-with-gold-rationales rows (when test examples have them)"}
    )

    def __post_init__(self) -> None:
        if self.k < 2 or self.max_rationale_tokens < 1:
            raise ValueError(f"need k >= 2 and max_rationale_tokens >= 1, got {self.k}, {self.max_rationale_tokens}")


RationaleWriter = Callable[[list[str], int, float], list[list[str]]]
"""``(guided_questions, n, temperature) -> n rationales each`` (``student_writer`` wraps a Student)."""


def student_writer(
    student: Any, instruction: str, max_new_tokens: int, *, seed: int = 0, batch_size: int = 16
) -> RationaleWriter:
    """A ``RationaleWriter`` over ``Student.generate`` with the rationale model's prompt.

    Sampling is seeded (``seed``) so a rerun draws the same rationales and hits the reasoner cache.
    """

    def write(guided_questions: list[str], n: int, temperature: float) -> list[list[str]]:
        prompts = [student.prompt(q, instruction) for q in guided_questions]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return student.generate(
                prompts,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                num_samples=n,
                batch_size=batch_size,
                progress=False,
            )

    return write


def fixed_writer(rationales: Sequence[str]) -> RationaleWriter:
    """A ``RationaleWriter`` that returns ``rationales[i]`` (n times) for the i-th question."""

    def write(guided_questions: list[str], n: int, temperature: float) -> list[list[str]]:
        if len(guided_questions) != len(rationales):
            raise ValueError(f"{len(guided_questions)} questions for {len(rationales)} fixed rationales")
        return [[r] * n for r in rationales]

    return write


def majority_vote(candidates: Sequence[str | None]) -> str:
    """The most frequent answer after SQuAD normalisation; ties go to the earliest; '' when none."""
    return scoring.majority_vote([answers.normalize_text(c) or None for c in candidates if c]) or ""


@dataclass(frozen=True)
class Condition:
    """One row group of the table: how the reasoner gets (or does not get) a rationale."""

    name: str
    writer: RationaleWriter | None = None  # None: no rationale model
    own_cot: bool = False


def predict(
    condition: Condition, queries: list[Query], guided_questions: list[str], reasoner: Reasoner, k: int
) -> dict[str, list[Any]]:
    """Greedy and self-consistency predictions (and the rationales used) for every query."""
    temperature = reasoner.config.sc_temperature
    if condition.own_cot:
        greedy_texts = reasoner.own_cot(queries)
        sc_texts = reasoner.own_cot(queries, n=k, temperature=temperature)
        greedy = [_cot_answer(t[0]) if t else "" for t in greedy_texts]
        sc = [majority_vote([_cot_answer(x) for x in t]) if t else "" for t in sc_texts]
        return {"greedy": greedy, "sc": sc, "rationale": [t[0] if t else None for t in greedy_texts]}
    if condition.writer is None:
        greedy = [a[0] if a else "" for a in reasoner.answer(queries)]
        sc = [majority_vote(a) if a else "" for a in reasoner.answer(queries, n=k, temperature=temperature)]
        return {"greedy": greedy, "sc": sc, "rationale": [None] * len(queries)}
    first = [r[0] for r in condition.writer(guided_questions, 1, 0.0)]
    sampled = condition.writer(guided_questions, k, temperature)
    guided = [Query(q.question, q.context, r) for q, r in zip(queries, first)]
    greedy = [a[0] if a else "" for a in reasoner.answer(guided)]
    flat = [Query(q.question, q.context, r) for q, rs in zip(queries, sampled) for r in rs]
    flat_answers = reasoner.answer(flat)
    sc = []
    for i in range(len(queries)):
        chunk = flat_answers[i * k : (i + 1) * k]
        sc.append(majority_vote([a[0] if a else None for a in chunk]))
    return {"greedy": greedy, "sc": sc, "rationale": first}


def _cot_answer(text: str) -> str:
    return answers.extract(text, "text", strict=False) or ""


def _groups(examples: Sequence[Example]) -> dict[str, list[int]]:
    """Question indices per question type plus ``"all"`` (``all`` first, then types sorted)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[example.meta.get("type", "unknown")].append(i)
        groups["all"].append(i)
    return dict(sorted(groups.items(), key=lambda item: (item[0] != "all", item[0])))


def question_scores(predictions: Sequence[str], examples: Sequence[Example]) -> dict[str, list[float]]:
    """Per-question ``{"em": [...], "f1": [...]}`` (fractions), in question order."""
    return {
        "em": [em_score(p, e.answer) for p, e in zip(predictions, examples)],
        "f1": [f1_score(p, e.answer) for p, e in zip(predictions, examples)],
    }


def score_rows(predictions: Sequence[str], examples: Sequence[Example], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{type: {"em", "f1", "n", "em_ci", "f1_ci"}}`` plus ``"all"``, as fractions.

    ``em_ci`` / ``f1_ci`` are ``{mean, low, high}`` 95% bootstrap intervals over the questions.
    """
    scores = question_scores(predictions, examples)
    out: dict[str, dict[str, Any]] = {}
    for kind, index in _groups(examples).items():
        row: dict[str, Any] = {"n": len(index)}
        for metric in ("em", "f1"):
            values = [scores[metric][i] for i in index]
            row[metric] = sum(values) / len(values)
            row[f"{metric}_ci"] = bootstrap_ci(values, seed=seed).to_dict()
        out[kind] = row
    return out


def paired_difference(
    first: Sequence[str], second: Sequence[str], examples: Sequence[Example], *, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """``first`` minus ``second``, question by question: ``{type: {"n", "em", "f1"}}`` intervals.

    Each of ``em`` / ``f1`` is the mean per-question difference with a 95% bootstrap interval
    (``{mean, low, high}``); an interval that excludes 0 is a difference the questions support.
    """
    a, b = question_scores(first, examples), question_scores(second, examples)
    out: dict[str, dict[str, Any]] = {}
    for kind, index in _groups(examples).items():
        row: dict[str, Any] = {"n": len(index)}
        for metric in ("em", "f1"):
            row[metric] = bootstrap_ci([a[metric][i] - b[metric][i] for i in index], seed=seed).to_dict()
        out[kind] = row
    return out


def evaluate(
    conditions: Sequence[Condition],
    examples: Sequence[Example],
    queries: list[Query],
    guided_questions: list[str],
    reasoner: Reasoner,
    k: int,
    *,
    paired: tuple[str, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every condition greedy and with self-consistency: ``{"rows": [...], "examples": [...]}``.

    With ``paired = (first, second)`` (two condition names) the result also has ``"paired"``:
    ``{"first", "second", "greedy": paired_difference(...), "sc": ...}``.
    """
    rows, per_example = [], []
    predictions: dict[str, dict[str, list[Any]]] = {}
    for condition in progress(conditions, desc="evaluate conditions"):
        predicted = predict(condition, queries, guided_questions, reasoner, k)
        predictions[condition.name] = predicted
        for mode in ("greedy", "sc"):
            rows.append(
                {
                    "condition": condition.name,
                    "self_consistency": mode == "sc",
                    "k": k if mode == "sc" else 1,
                    "scores": score_rows(predicted[mode], examples, seed=seed),
                }
            )
        for i, example in enumerate(examples):
            per_example.append(
                {
                    "id": example.id,
                    "condition": condition.name,
                    "type": example.meta.get("type"),
                    "gold": example.answer,
                    "greedy": predicted["greedy"][i],
                    "sc": predicted["sc"][i],
                    "rationale": predicted["rationale"][i],
                }
            )
    result: dict[str, Any] = {"rows": rows, "examples": per_example}
    if paired is not None and all(name in predictions for name in paired):
        first, second = (predictions[name] for name in paired)
        result["paired"] = {
            "first": paired[0],
            "second": paired[1],
            **{mode: paired_difference(first[mode], second[mode], examples, seed=seed) for mode in ("greedy", "sc")},
        }
    return result


def table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows for the report: EM/F1 overall and per question type (percent)."""
    kinds = list(rows[0]["scores"]) if rows else []
    headers = ["condition", "SC"] + [f"{m} {kind}" for kind in kinds for m in ("EM", "F1")]
    body = []
    for row in rows:
        cells: list[Any] = [row["condition"], f"k={row['k']}" if row["self_consistency"] else "-"]
        for kind in kinds:
            score = row["scores"].get(kind, {})
            cells += [_percent(score, "em"), _percent(score, "f1")]
        body.append(cells)
    return headers, body


def _percent(score: dict[str, Any], metric: str) -> str:
    """``"37.5 [25.0, 50.0]"``, or the bare mean for rows written without intervals."""
    if f"{metric}_ci" in score:
        return Interval.from_dict(score[f"{metric}_ci"]).format()
    return f"{100 * score.get(metric, 0.0):.1f}"


def paired_table(paired: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the paired difference (percentage points, 95% intervals)."""
    kinds = list(paired["greedy"])
    headers = ["difference", "SC"] + [f"{m} {kind}" for kind in kinds for m in ("EM", "F1")]
    body = []
    for mode in ("greedy", "sc"):
        cells: list[Any] = [f"{paired['first']} - {paired['second']}", "k" if mode == "sc" else "-"]
        for kind in kinds:
            cells += [Interval.from_dict(paired[mode][kind][m]).format() for m in ("em", "f1")]
        body.append(cells)
    return headers, body


def evaluate_rationale_models(
    test: Sequence[Example],
    reasoner: Reasoner,
    models: Mapping[str, Any],
    cfg: LMGuidedEvalConfig,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """``evaluate`` over the reasoner alone, its own CoT, each rationale model (``{"KD": student,
    ...}``) and the gold rationales; ``paired``: the last model minus the first, question by question."""
    conditions = [Condition("reasoner alone")]
    if cfg.own_cot:
        conditions.append(Condition("reasoner CoT", own_cot=True))
    names = [f"reasoner + {name} rationales" for name in models]
    conditions += [
        Condition(label, student_writer(model, RATIONALE_INSTRUCTION, cfg.max_rationale_tokens, seed=seed))
        for label, model in zip(names, models.values())
    ]
    if cfg.gold and all(e.rationale for e in test):
        conditions.append(Condition("reasoner + gold rationales", fixed_writer([e.rationale or "" for e in test])))
    questions = [guided_example(e).question for e in test]
    paired = (names[-1], names[0]) if len(names) > 1 else None
    queries = [query(e) for e in test]
    return evaluate(conditions, test, queries, questions, reasoner, cfg.k, paired=paired, seed=seed)
