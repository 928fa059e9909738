"""ReDis stage 2: dedupe rules, build preference pairs by score margin, and the two SFT sets.

* Rules are deduplicated exactly within a task (counts and best score kept).
* A pair ``(chosen, rejected)`` is made for every two rules of a task whose scores differ by
  more than the task's margin (``score(chosen) - score(rejected) > margin``); defaults per domain
  follow the paper: 1D-ARC 1, ACRE 2, List Functions 3, MiniSCAN 4 (``DEFAULT_MARGINS``).
* Rule-generation SFT (``rule_generation``): ``all`` (default, the paper's code) keeps every
  distinct rule of every task whatever its score, so SFT learns the teacher's proposal
  distribution and alignment then separates good rules from bad; ``best`` keeps only each task's
  top-scoring rules, and only when they reach ``min_rule_score`` (a fraction of the seen pairs).
* Rule-following SFT: the teacher's parsed applications of the *high-quality* rules, i.e. those
  chosen in at least one pair (what the rule produces, right or wrong: it teaches following).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from cotdistill.methods.redis.augment import ScoredRule, TaskRules
from cotdistill.methods.redis.prompts import apply_prompt, direct_prompt, output_target, rule_prompt
from cotdistill.tasks.inductive import RuleTask

T = TypeVar("T")
DEFAULT_MARGINS: dict[str, int] = {"arc1d": 1, "acre": 2, "list_functions": 3, "miniscan": 4}


@dataclass
class FilterConfig:
    margins: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_MARGINS),
        metadata={"help": "per-domain score margin: pairs need a score difference above it"},
    )
    default_margin: int = field(default=1, metadata={"help": "margin of domains not listed in `margins`"})
    max_pairs_per_task: int = field(default=0, metadata={"help": "keep at most this many pairs per task (0: all)"})
    max_following_per_task: int = field(
        default=0, metadata={"help": "keep at most this many rule-following items per task (0: all)"}
    )
    max_generation_per_task: int = field(
        default=0, metadata={"help": "keep at most this many rule-generation items per task (0: all)"}
    )
    rule_generation: Literal["all", "best"] = field(
        default="all",
        metadata={"help": "rule-generation SFT set: all = every distinct rule (the paper); best = top rules only"},
    )
    min_rule_score: float = field(
        default=1.0,
        metadata={"help": "with rule_generation: best, top rules need at least this fraction of seen pairs"},
    )
    seed: int = field(default=0, metadata={"help": "seed for subsampling pairs"})

    def __post_init__(self) -> None:
        for key, value in {**self.margins, "default_margin": self.default_margin}.items():
            if value < 0:
                raise ValueError(f"margin of {key} must be >= 0, got {value}")
        for name in ("max_pairs_per_task", "max_following_per_task", "max_generation_per_task"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_rule_score <= 1.0:
            raise ValueError(f"min_rule_score must be in [0, 1], got {self.min_rule_score}")

    def margin(self, domain: str) -> int:
        return self.margins.get(domain, self.default_margin)


@dataclass(frozen=True)
class PreferencePair:
    task_idx: str
    domain: str
    prompt: str
    chosen: str
    rejected: str
    chosen_score: int
    rejected_score: int


@dataclass(frozen=True)
class SFTItem:
    """One supervised target: ``completion`` after ``prompt`` (``kind``: rule_generation | rule_following | io)."""

    kind: str
    task_idx: str
    domain: str
    prompt: str
    completion: str


def dedupe(rules: Sequence[ScoredRule]) -> list[ScoredRule]:
    """Exact dedupe by rule text (counts summed, best score and its outputs kept), first-seen order."""
    merged: dict[str, ScoredRule] = {}
    for r in rules:
        if r.rule in merged:
            old = merged[r.rule]
            best = r if r.score > old.score else old
            merged[r.rule] = ScoredRule(r.rule, old.count + r.count, best.score, best.outputs)
        else:
            merged[r.rule] = r
    return list(merged.values())


def _capped(items: list[T], limit: int, rng: random.Random) -> list[T]:
    """``items``, or a seeded sample of ``limit`` of them (0: no limit)."""
    return rng.sample(items, limit) if limit and len(items) > limit else items


def _generation_rules(rules: Sequence[ScoredRule], cfg: FilterConfig, record: TaskRules) -> list[ScoredRule]:
    """The rules of one task that the rule-generation SFT set keeps (see ``FilterConfig.rule_generation``)."""
    if cfg.rule_generation == "all":
        return list(rules)
    best = max((r.score for r in rules), default=0)
    if best <= 0 or best < cfg.min_rule_score * record.n_seen:
        return []
    return [r for r in rules if r.score == best]


def make_pairs(rules: Sequence[ScoredRule], margin: int) -> list[tuple[ScoredRule, ScoredRule]]:
    """Every ``(chosen, rejected)`` with ``chosen.score - rejected.score > margin``."""
    return [(a, b) for a in rules for b in rules if a.score - b.score > margin]


@dataclass
class Stage2:
    """Everything stage 2 produces."""

    pairs: list[PreferencePair]
    rule_generation: list[SFTItem]
    rule_following: list[SFTItem]
    stats: dict[str, dict[str, float]]


def build(records: Sequence[TaskRules], tasks: Mapping[str, RuleTask], cfg: FilterConfig) -> Stage2:
    """Stage 2 over the stage-1 records of the training ``tasks`` (idx -> task)."""
    rng = random.Random(cfg.seed)
    pairs: list[PreferencePair] = []
    rule_gen: list[SFTItem] = []
    rule_follow: list[SFTItem] = []
    stats: dict[str, dict[str, float]] = {}
    for record in records:
        task = tasks[record.task_idx]
        rules = dedupe(record.rules)
        prompt = rule_prompt(task.train)
        task_pairs = _capped(make_pairs(rules, cfg.margin(record.domain)), cfg.max_pairs_per_task, rng)
        pairs += [
            PreferencePair(task.idx, task.domain, prompt, a.rule, b.rule, a.score, b.score) for a, b in task_pairs
        ]
        best = max((r.score for r in rules), default=0)
        generation = [
            SFTItem("rule_generation", task.idx, task.domain, prompt, r.rule)
            for r in _generation_rules(rules, cfg, record)
        ]
        rule_gen += _capped(generation, cfg.max_generation_per_task, rng)
        chosen = {a.rule: a for a, _ in task_pairs}
        following = [
            SFTItem("rule_following", task.idx, task.domain, apply_prompt(r.rule, pair.input), output_target(output))
            for r in chosen.values()
            for pair, output in zip(task.train, r.outputs)
            if output is not None
        ]
        rule_follow += _capped(following, cfg.max_following_per_task, rng)
        domain_stats = stats.setdefault(record.domain, {"tasks": 0, "rules": 0, "pairs": 0, "perfect_tasks": 0})
        domain_stats["tasks"] += 1
        domain_stats["rules"] += len(rules)
        domain_stats["pairs"] += len(task_pairs)
        domain_stats["perfect_tasks"] += int(bool(rules) and best == record.n_seen)
    return Stage2(pairs, rule_gen, rule_follow, stats)


def io_items(tasks: Sequence[RuleTask], max_per_task: int = 0, seed: int = 0) -> list[SFTItem]:
    """IO-SFT data: every seen pair as a query (the other seen pairs as examples) plus the unseen ones.

    With ``max_per_task`` a seeded sample of that many items is kept per task.
    """
    rng = random.Random(f"io:{seed}")
    items: list[SFTItem] = []
    for task in tasks:
        task_items: list[SFTItem] = []
        for i, pair in enumerate(task.train):
            others = task.train[:i] + task.train[i + 1 :]
            task_items.append(
                SFTItem("io", task.idx, task.domain, direct_prompt(others, pair.input), output_target(pair.output))
            )
        for pair in task.test:
            task_items.append(
                SFTItem("io", task.idx, task.domain, direct_prompt(task.train, pair.input), output_target(pair.output))
            )
        if max_per_task and len(task_items) > max_per_task:
            task_items = rng.sample(task_items, max_per_task)
        items += task_items
    return items


def tokenizer_corpus(train: Sequence[RuleTask], test: Sequence[RuleTask], stage2: Stage2) -> list[str]:
    """Texts a from-scratch tokenizer is trained on: every prompt and target a ReDis run uses."""
    texts = [f"{i.prompt} {i.completion}" for i in stage2.rule_generation + stage2.rule_following]
    texts += [f"{p.prompt} {p.chosen} {p.rejected}" for p in stage2.pairs]
    texts += [f"{i.prompt} {i.completion}" for i in io_items(train)]
    texts += [direct_prompt(t.train, p.input) for t in test for p in t.test]
    return texts
