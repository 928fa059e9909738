"""The offline ReDis teacher: states known rules of generated tasks and executes the rules it stated.

For procedurally generated tasks the true rule is known, so no LM is needed to run the pipeline:

* a rule-generation request (``subject = RuleRequest(task_idx)``) gets ``n`` samples,
  each the true rule with probability ``p_true`` and otherwise one of the task's plausible wrong
  rules (``Domain.perturb``: other parameters, another rule family, a flipped status...);
* a rule-following request (``subject = ApplyRequest(task_idx, rule, input)``) gets
  ``Output: <rule applied to input>`` when the rule is one the oracle can state for that task,
  ``Output: none`` when the rule does not apply to the input, and an error otherwise.

The candidate rules of a task are a deterministic function of ``(seed, task idx)``, so a resumed
run sees the same rules. It implements the ``cotdistill.teachers.Teacher`` protocol.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from cotdistill.methods.redis.requests import ApplyRequest, RuleRequest
from cotdistill.tasks.inductive import GeneratedTask, Rule, RuleError, get_domain
from cotdistill.teachers.base import CompletionRequest, CompletionResult


class RuleOracle:
    """Teacher over generated tasks (``tasks``: idx -> task with its ``rule``)."""

    id = "rule-oracle"

    def __init__(self, tasks: Mapping[str, GeneratedTask], *, p_true: float = 0.3, pool_size: int = 24, seed: int = 0):
        if not 0.0 <= p_true <= 1.0:
            raise ValueError(f"p_true must be in [0, 1], got {p_true}")
        self.tasks = dict(tasks)
        self.p_true = p_true
        self.pool_size = pool_size
        self.seed = seed
        self._pools: dict[str, dict[str, Rule]] = {}

    def pool(self, task: GeneratedTask) -> dict[str, Rule]:
        """Rule text -> Rule: the true rule plus up to ``pool_size`` distinct wrong ones."""
        if task.idx not in self._pools:
            assert task.rule is not None
            rng = random.Random(f"{self.seed}:{task.idx}")
            domain = get_domain(task.domain)
            rules = {task.rule.text: task.rule}
            for _ in range(4 * self.pool_size):
                if len(rules) > self.pool_size:
                    break
                wrong = domain.perturb(task, rng)
                rules.setdefault(wrong.text, wrong)
            self._pools[task.idx] = rules
        return self._pools[task.idx]

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        return [self._one(r) for r in requests]

    def _one(self, request: CompletionRequest) -> CompletionResult:
        subject = request.subject
        if not isinstance(subject, (RuleRequest, ApplyRequest)):
            return CompletionResult(request.key, [], error="rule-oracle: not a ReDis rule or apply request")
        task = self.tasks.get(subject.task_idx)
        if task is None or task.rule is None:
            return CompletionResult(request.key, [], error="rule-oracle: unknown task or task without a known rule")
        pool = self.pool(task)
        if isinstance(subject, RuleRequest):
            rng = random.Random(f"{self.seed}:{request.key}")
            wrong = [t for t in pool if t != task.rule.text]
            texts = [
                task.rule.text if rng.random() < self.p_true or not wrong else rng.choice(wrong)
                for _ in range(request.n)
            ]
            return CompletionResult(request.key, texts)
        rule = pool.get(subject.rule)
        if rule is None:
            return CompletionResult(request.key, [], error="rule-oracle: can only apply rules it stated")
        try:
            output = rule.apply(subject.input)
        except RuleError:
            output = "none"
        return CompletionResult(request.key, [f"Output: {output}"] * request.n)
