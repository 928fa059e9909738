"""List Functions (Rule 2020; ReDis/Qiu et al. format): integer lists mapped by one hidden rule.

Rule families (``RULES``): reverse, sort up/down, keep first/last k, drop first k, add k,
multiply by k, remove duplicates, keep elements greater than k, keep even elements, append /
prepend k, rotate left, and one-element summaries (sum, length, maximum). A wrong rule is the
same family with another parameter or another family.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cotdistill.answers import AnswerType
from cotdistill.tasks.base import register_task
from cotdistill.tasks.inductive.base import (
    GeneratedTask,
    InductiveCoTTask,
    ListDomain,
    Pair,
    Rule,
    canonical_list,
    parse_int_list,
    register_domain,
    validate_positive,
    validate_rule_names,
)

IntList = list[int]


@dataclass(frozen=True)
class RuleSpec:
    """A parametrised rule family: ``text(k)`` states it, ``fn(k, xs)`` applies it."""

    name: str
    params: tuple[int, ...]
    text: Callable[[int], str]
    fn: Callable[[int, IntList], IntList]


def _dedupe(_: int, xs: IntList) -> IntList:
    return list(dict.fromkeys(xs))


RULES: tuple[RuleSpec, ...] = (
    RuleSpec("reverse", (0,), lambda k: "Reverse the list.", lambda k, xs: xs[::-1]),
    RuleSpec("sort_up", (0,), lambda k: "Sort the list in ascending order.", lambda k, xs: sorted(xs)),
    RuleSpec("sort_down", (0,), lambda k: "Sort the list in descending order.", lambda k, xs: sorted(xs, reverse=True)),
    RuleSpec("first", (1, 2, 3), lambda k: f"Keep only the first {k} elements.", lambda k, xs: xs[:k]),
    RuleSpec("last", (1, 2, 3), lambda k: f"Keep only the last {k} elements.", lambda k, xs: xs[-k:]),
    RuleSpec("drop", (1, 2), lambda k: f"Remove the first {k} elements.", lambda k, xs: xs[k:]),
    RuleSpec("add", (1, 2, 3, 5), lambda k: f"Add {k} to every element.", lambda k, xs: [x + k for x in xs]),
    RuleSpec("mul", (2, 3), lambda k: f"Multiply every element by {k}.", lambda k, xs: [x * k for x in xs]),
    RuleSpec("dedupe", (0,), lambda k: "Remove repeated elements, keeping the first occurrence of each.", _dedupe),
    RuleSpec(
        "greater",
        (2, 4, 6),
        lambda k: f"Keep only the elements greater than {k}.",
        lambda k, xs: [x for x in xs if x > k],
    ),
    RuleSpec("even", (0,), lambda k: "Keep only the even elements.", lambda k, xs: [x for x in xs if x % 2 == 0]),
    RuleSpec("append", (0, 3, 7), lambda k: f"Append {k} to the end of the list.", lambda k, xs: [*xs, k]),
    RuleSpec("prepend", (1, 5, 9), lambda k: f"Insert {k} at the start of the list.", lambda k, xs: [k, *xs]),
    RuleSpec("rotate", (0,), lambda k: "Move the first element to the end.", lambda k, xs: xs[1:] + xs[:1]),
    RuleSpec(
        "sum", (0,), lambda k: "Output a list with one element: the sum of the elements.", lambda k, xs: [sum(xs)]
    ),
    RuleSpec(
        "length", (0,), lambda k: "Output a list with one element: the number of elements.", lambda k, xs: [len(xs)]
    ),
    RuleSpec(
        "max",
        (0,),
        lambda k: "Output a list with one element: the largest element.",
        lambda k, xs: [max(xs)] if xs else [],
    ),
)
RULES_BY_NAME = {spec.name: spec for spec in RULES}


def make_rule(spec: RuleSpec, k: int) -> Rule:
    def apply(value: str) -> str:
        return canonical_list(spec.fn(k, parse_int_list(value)))

    return Rule(spec.text(k), apply)


@register_domain("list_functions")
class ListFunctions(ListDomain):
    n_seen = 8
    n_test = 8

    def sample_task(
        self, rng: random.Random, n_seen: int, n_test: int, params: ListFunctionsParams | None
    ) -> GeneratedTask:
        params = params or ListFunctionsParams()
        specs = [RULES_BY_NAME[name] for name in params.rules] if params.rules else list(RULES)
        spec = rng.choice(specs)
        k = rng.choice(spec.params)
        rule = make_rule(spec, k)
        pairs: list[Pair] = []
        seen_inputs: set[str] = set()
        while len(pairs) < n_seen + n_test:
            length = rng.randint(params.min_len, params.max_len)
            value = canonical_list(rng.randint(0, params.max_value) for _ in range(length))
            if value in seen_inputs and len(seen_inputs) < (params.max_value + 1) ** params.max_len:
                continue
            seen_inputs.add(value)
            pairs.append(Pair(value, rule.apply(value)))
        return GeneratedTask(
            "", self.name, tuple(pairs[:n_seen]), tuple(pairs[n_seen:]), {"family": spec.name, "k": k}, rule
        )

    def perturb(self, task: GeneratedTask, rng: random.Random) -> Rule:
        spec = RULES_BY_NAME[task.meta["family"]]
        others = [p for p in spec.params if p != task.meta["k"]]
        if others and rng.random() < 0.5:
            return make_rule(spec, rng.choice(others))
        other = rng.choice([s for s in RULES if s.name != spec.name])
        return make_rule(other, rng.choice(other.params))


@dataclass
class ListFunctionsParams:
    n_seen: int = field(default=4, metadata={"help": "seen input/output pairs shown in the question"})
    min_len: int = field(default=1, metadata={"help": "shortest input list"})
    max_len: int = field(default=5, metadata={"help": "longest input list"})
    max_value: int = field(default=9, metadata={"help": "largest integer in an input list (smallest is 0)"})
    rules: list[str] = field(
        default_factory=list,
        metadata={"help": f"rule families to draw from (empty: all of {', '.join(RULES_BY_NAME)})"},
    )

    def __post_init__(self) -> None:
        validate_positive(n_seen=self.n_seen, min_len=self.min_len, max_value=self.max_value)
        if self.max_len < self.min_len:
            raise ValueError(f"max_len must be >= min_len ({self.min_len}), got {self.max_len}")
        validate_rule_names(self.rules, RULES_BY_NAME)


@register_task("list_functions")
class ListFunctionsTask(InductiveCoTTask):
    """Infer a list-to-list rule from seen pairs and apply it to a new list."""

    answer_type = AnswerType.LIST
    description = "List Functions: infer an integer-list rule (reverse, sort, take k, add k, ...) and apply it"
    domain_cls = ListFunctions
    Params = ListFunctionsParams
