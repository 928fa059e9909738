"""Inference on unseen tasks: hypothesis search (ReDis) and direct answering (baselines).

Hypothesis search, per task: the student samples ``num_rules`` rules from the seen pairs
(``temperature``); each distinct rule is applied by the student (greedy, or sampled at
``apply_temperature``) to every seen input and scored by exact match; the best rule is applied to
each unseen input. **Tie rule**: highest score, then the rule sampled most often, then the one
sampled first. Sampling is seeded (``seed``: the same seed, student and tasks give the same
result). Direct answering asks for each unseen output from the seen pairs (greedy few-shot
prompt; also the IO-SFT student's format).

Accuracy is exact match of the parsed output, micro-averaged over unseen queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from cotdistill.methods.redis.prompts import OUTPUT_PREFIX, apply_prompt, direct_prompt, extract_rule, rule_prompt
from cotdistill.models import Student
from cotdistill.tasks.inductive import RuleTask, get_domain


@dataclass
class SearchConfig:
    num_rules: int = field(default=8, metadata={"help": "rules the student samples per unseen task"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of rule generation"})
    apply_temperature: float = field(
        default=0.0, metadata={"help": "sampling temperature of rule following (0: greedy; the paper: 0.7)"}
    )
    seeds: list[int] = field(
        default_factory=lambda: [0], metadata={"help": "one hypothesis search per seed (results pooled over seeds)"}
    )
    rule_max_tokens: int = field(default=96, metadata={"help": "token budget of one rule"})
    apply_max_tokens: int = field(default=64, metadata={"help": "token budget of one output"})
    batch_size: int = field(default=32, metadata={"help": "prompts per generation batch"})

    def __post_init__(self) -> None:
        for name in ("num_rules", "rule_max_tokens", "apply_max_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature < 0 or self.apply_temperature < 0:
            raise ValueError(f"temperatures must be >= 0, got {self.temperature}, {self.apply_temperature}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must list distinct seeds, got {self.seeds}")


@dataclass
class TaskResult:
    """Predictions for the unseen queries of one task (``rule``/``rule_score`` empty for direct answering)."""

    task_idx: str
    domain: str
    predictions: list[str | None]
    gold: list[str | None]
    rule: str | None = None
    rule_score: int | None = None
    n_seen: int = 0
    candidates: list[dict[str, Any]] = field(default_factory=list)
    types: list[str | None] = field(default_factory=list)  # per unseen query, when the file gives one (ACRE)

    @property
    def correct(self) -> list[bool]:
        return [p is not None and p == g for p, g in zip(self.predictions, self.gold)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "correct": self.correct}


def _generate(
    student: Student,
    questions: Sequence[str],
    cfg: SearchConfig,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    num_samples: int = 1,
    primed: bool = False,
) -> list[list[str]]:
    """``num_samples`` replies per question; ``primed``: each reply starts after ``OUTPUT_PREFIX``,
    which the returned texts include."""
    prefix = student.completion(OUTPUT_PREFIX) if primed else ""
    replies = student.generate(
        [student.prompt(q) + prefix for q in questions],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        num_samples=num_samples,
        batch_size=cfg.batch_size,
        progress=True,
    )
    return [[_with_prefix(text, prefix) for text in texts] for texts in replies]


def _with_prefix(text: str, prefix: str) -> str:
    """``prefix + text``, unless the reply restates the prefix itself."""
    return text if not prefix or text.lstrip().startswith(prefix.strip()) else prefix.strip() + text


def _apply(student: Student, task_rules: Sequence[tuple[RuleTask, str, str]], cfg: SearchConfig) -> list[str | None]:
    """Parsed outputs of applying each ``(task, rule, input)`` with the student (greedy)."""
    texts = _generate(
        student,
        [apply_prompt(rule, value) for _, rule, value in task_rules],
        cfg,
        max_new_tokens=cfg.apply_max_tokens,
        temperature=cfg.apply_temperature,
        primed=True,
    )
    return [get_domain(task.domain).parse_output(out[0]) for (task, _, _), out in zip(task_rules, texts)]


def choose(candidates: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The best candidate: highest ``score``, then highest ``count``, then lowest ``order``."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (-c["score"], -c["count"], c["order"]))


def hypothesis_search(
    student: Student, tasks: Sequence[RuleTask], cfg: SearchConfig, seed: int = 0
) -> list[TaskResult]:
    """ReDis inference for every task (see the module docstring), sampling from torch seed ``seed``.

    The global torch RNG is restored afterwards, so a search does not shift later randomness.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _search(student, tasks, cfg)


def _search(student: Student, tasks: Sequence[RuleTask], cfg: SearchConfig) -> list[TaskResult]:
    samples = _generate(
        student,
        [rule_prompt(t.train) for t in tasks],
        cfg,
        max_new_tokens=cfg.rule_max_tokens,
        temperature=cfg.temperature,
        num_samples=cfg.num_rules,
    )
    candidates: list[list[dict[str, Any]]] = []
    for texts in samples:
        found: dict[str, dict[str, Any]] = {}
        for order, text in enumerate(texts):
            rule = extract_rule(text)
            if rule:
                found.setdefault(rule, {"rule": rule, "count": 0, "order": order})["count"] += 1
        candidates.append(list(found.values()))
    jobs = [(t, c["rule"], p.input) for t, cands in zip(tasks, candidates) for c in cands for p in t.train]
    outputs = iter(_apply(student, jobs, cfg))
    best: list[dict[str, Any] | None] = []
    for task, cands in zip(tasks, candidates):
        gold = [get_domain(task.domain).normalize(p.output) for p in task.train]
        for c in cands:
            c["outputs"] = [next(outputs) for _ in task.train]
            c["score"] = sum(o is not None and o == g for o, g in zip(c["outputs"], gold))
        best.append(choose(cands))
    finals = [(t, b["rule"], p.input) for t, b in zip(tasks, best) if b is not None for p in t.test]
    predictions = iter(_apply(student, finals, cfg))
    results = []
    for task, cands, chosen in zip(tasks, candidates, best):
        domain = get_domain(task.domain)
        preds = [next(predictions) for _ in task.test] if chosen is not None else [None] * len(task.test)
        results.append(
            TaskResult(
                task.idx,
                task.domain,
                preds,
                [domain.normalize(p.output) for p in task.test],
                chosen["rule"] if chosen else None,
                chosen["score"] if chosen else None,
                len(task.train),
                cands,
                [p.type for p in task.test],
            )
        )
    return results


def direct_answers(student: Student, tasks: Sequence[RuleTask], cfg: SearchConfig) -> list[TaskResult]:
    """Answer every unseen query straight from the seen pairs (greedy)."""
    jobs = [(t, p) for t in tasks for p in t.test]
    texts = _generate(
        student,
        [direct_prompt(t.train, p.input) for t, p in jobs],
        cfg,
        max_new_tokens=cfg.apply_max_tokens,
        primed=True,
    )
    outputs = iter(texts)
    results = []
    for task in tasks:
        domain = get_domain(task.domain)
        preds = [domain.parse_output(next(outputs)[0]) for _ in task.test]
        results.append(
            TaskResult(
                task.idx,
                task.domain,
                preds,
                [domain.normalize(p.output) for p in task.test],
                n_seen=len(task.train),
                types=[p.type for p in task.test],
            )
        )
    return results


def accuracy_table(results: Sequence[TaskResult]) -> dict[str, dict[str, float]]:
    """Per-domain and overall (``"all"``) micro accuracy: ``{domain: {accuracy, correct, total}}``."""
    return _tally((key, ok) for r in results for ok in r.correct for key in (r.domain, "all"))


def accuracy_by_type(results: Sequence[TaskResult]) -> dict[str, dict[str, dict[str, float]]]:
    """``{domain: {query type: {accuracy, correct, total}}}`` for queries whose file gives a type."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for domain in dict.fromkeys(r.domain for r in results):
        pairs = [(t, ok) for r in results if r.domain == domain for t, ok in zip(r.types, r.correct) if t]
        if pairs:
            out[domain] = _tally(pairs)
    return out


def _tally(pairs: Iterable[tuple[str, bool]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for key, ok in pairs:
        row = table.setdefault(key, {"correct": 0, "total": 0})
        row["correct"] += int(ok)
        row["total"] += 1
    for row in table.values():
        row["accuracy"] = row["correct"] / row["total"] if row["total"] else 0.0
    return table
