"""ReDis stage 1: the teacher proposes rules for each training task and scores them by rule following.

For every task the teacher samples ``num_rules`` candidate rules from the seen pairs
(``rule_temperature``); each distinct rule is applied by the teacher to every seen input
(``apply_temperature``); the parsed output is compared with the seen output by exact match, and
the rule's score is the number reproduced. Two files, appended task by task (resumable):

* ``rules.jsonl``: one line per task: the rule prompt, the raw samples, and every distinct rule
  with ``count`` (times sampled), ``score`` and the parsed ``outputs``;
* ``applications.jsonl``: one line per rule application: prompt, response, parsed output, gold,
  correct.

A task counts as done once its ``rules.jsonl`` line is written; on resume, application lines of
unfinished tasks are dropped and those tasks are redone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.console import progress
from cotdistill.io import JsonlAppender, atomic_write_text
from cotdistill.methods.redis.prompts import apply_prompt, extract_rule, rule_prompt
from cotdistill.methods.redis.requests import ApplyRequest, RuleRequest
from cotdistill.tasks.inductive import RuleTask, get_domain
from cotdistill.teachers.base import CompletionRequest, Teacher

RULES_FILE = "rules.jsonl"
APPLICATIONS_FILE = "applications.jsonl"


@dataclass
class AugmentConfig:
    num_rules: int = field(default=50, metadata={"help": "rules the teacher samples per training task"})
    rule_temperature: float = field(default=1.0, metadata={"help": "sampling temperature of rule generation"})
    apply_temperature: float = field(default=0.7, metadata={"help": "sampling temperature of rule following"})
    rule_max_tokens: int = field(default=160, metadata={"help": "token budget of one rule"})
    apply_max_tokens: int = field(default=96, metadata={"help": "token budget of one rule application"})
    tasks_per_batch: int = field(default=8, metadata={"help": "tasks whose requests go to the teacher together"})

    def __post_init__(self) -> None:
        for name in ("num_rules", "rule_max_tokens", "apply_max_tokens", "tasks_per_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("rule_temperature", "apply_temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class ScoredRule:
    """A distinct rule of one task: how often it was sampled and how many seen pairs it reproduces."""

    rule: str
    count: int
    score: int
    outputs: list[str | None]


@dataclass
class TaskRules:
    """Every distinct rule the teacher proposed for one task, with scores (one ``rules.jsonl`` line)."""

    task_idx: str
    domain: str
    n_seen: int
    rules: list[ScoredRule]
    prompt: str = ""
    samples: list[str] = field(default_factory=list)
    error: str | None = None
    teacher: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRules:
        rules = [ScoredRule(**r) for r in data["rules"]]
        return cls(**{**data, "rules": rules})


def _chat(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def augment(
    tasks: Sequence[RuleTask], teacher: Teacher, cfg: AugmentConfig, out_dir: str | Path, *, resume: bool = False
) -> list[TaskRules]:
    """Run stage 1 for ``tasks`` (writing ``out_dir``); returns the records of all tasks, in task order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = _load_done(out_dir) if resume else {}
    if not resume:
        for name in (RULES_FILE, APPLICATIONS_FILE):
            (out_dir / name).unlink(missing_ok=True)
    _drop_unfinished_applications(out_dir / APPLICATIONS_FILE, set(done))
    todo = [t for t in tasks if t.idx not in done]
    batches = [todo[i : i + cfg.tasks_per_batch] for i in range(0, len(todo), cfg.tasks_per_batch)]
    with JsonlAppender(out_dir / RULES_FILE) as rules_out, JsonlAppender(out_dir / APPLICATIONS_FILE) as apps_out:
        for batch in progress(batches, desc="redis: teacher rules"):
            for record, applications in _augment_batch(batch, teacher, cfg):
                for row in applications:
                    apps_out.append(row)
                rules_out.append(record.to_dict())
                done[record.task_idx] = record
    return [done[t.idx] for t in tasks if t.idx in done]


def _augment_batch(
    batch: Sequence[RuleTask], teacher: Teacher, cfg: AugmentConfig
) -> list[tuple[TaskRules, list[dict[str, Any]]]]:
    prompts = {t.idx: rule_prompt(t.train) for t in batch}
    rule_results = teacher.complete(
        [
            CompletionRequest(
                key=f"rules:{t.idx}",
                messages=_chat(prompts[t.idx]),
                n=cfg.num_rules,
                temperature=cfg.rule_temperature,
                max_tokens=cfg.rule_max_tokens,
                subject=RuleRequest(t.idx),
            )
            for t in batch
        ]
    )
    counts: dict[str, dict[str, int]] = {}
    for task, result in zip(batch, rule_results):
        per_task: dict[str, int] = {}
        for text in result.texts:
            rule = extract_rule(text)
            if rule:
                per_task[rule] = per_task.get(rule, 0) + 1
        counts[task.idx] = per_task
    requests = [
        CompletionRequest(
            key=f"apply:{task.idx}:{r}:{i}",
            messages=_chat(apply_prompt(rule, pair.input)),
            temperature=cfg.apply_temperature,
            max_tokens=cfg.apply_max_tokens,
            subject=ApplyRequest(task.idx, rule, pair.input),
        )
        for task in batch
        for r, rule in enumerate(counts[task.idx])
        for i, pair in enumerate(task.train)
    ]
    responses = iter(teacher.complete(requests))
    out = []
    for task, rule_result in zip(batch, rule_results):
        domain = get_domain(task.domain)
        gold = [domain.normalize(p.output) for p in task.train]
        scored, applications = [], []
        for rule, count in counts[task.idx].items():
            outputs: list[str | None] = []
            for i, pair in enumerate(task.train):
                result = next(responses)
                response = result.texts[0] if result.texts else None
                parsed = domain.parse_output(response) if response is not None else None
                outputs.append(parsed)
                applications.append(
                    {
                        "task_idx": task.idx,
                        "domain": task.domain,
                        "rule": rule,
                        "input_index": i,
                        "prompt": apply_prompt(rule, pair.input),
                        "response": response,
                        "parsed": parsed,
                        "gold": gold[i],
                        "correct": parsed is not None and parsed == gold[i],
                        "error": result.error,
                    }
                )
            score = sum(o is not None and o == g for o, g in zip(outputs, gold))
            scored.append(ScoredRule(rule, count, score, outputs))
        record = TaskRules(
            task.idx,
            task.domain,
            len(task.train),
            scored,
            prompts[task.idx],
            list(rule_result.texts),
            rule_result.error,
            teacher.id,
        )
        out.append((record, applications))
    return out


def load_task_rules(path: str | Path) -> list[TaskRules]:
    """Read a ``rules.jsonl`` written by ``augment`` (or by hand in the same shape)."""
    from cotdistill.io import read_records

    return read_records(path, TaskRules.from_dict)


def _load_done(out_dir: Path) -> dict[str, TaskRules]:
    path = out_dir / RULES_FILE
    if not path.exists() or path.stat().st_size == 0:
        return {}
    JsonlAppender(path).close()  # drops a torn last line
    return {r.task_idx: r for r in load_task_rules(path)} if path.stat().st_size else {}


def _drop_unfinished_applications(path: Path, done: set[str]) -> None:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            if json.loads(line).get("task_idx") in done:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(kept))
