"""ACRE (Zhang et al. 2021; ReDis format): blicket-detector causal induction.

Objects are ``"colour material shape"``; some are blickets and the detector lights up when at
least one blicket is on it. From the seen trials, each object is a blicket, not a blicket
(it was on the detector when it stayed off) or unknown. The answer for a new set of objects is
``on`` (a known blicket is present), ``off`` (every object is known not to be a blicket) or
``undetermined``. The rule is that status assignment; wrong rules move one object to another
status. Generated tasks never contain a lit trial whose cause is ambiguous, so the true
assignment reproduces every seen trial.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from cotdistill.answers import AnswerType
from cotdistill.tasks.base import Family, register_task
from cotdistill.tasks.inductive.base import (
    Domain,
    GeneratedTask,
    InductiveCoTTask,
    Pair,
    Rule,
    answer_span,
    register_domain,
    validate_positive,
)

COLOURS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
MATERIALS = ("metal", "rubber")
SHAPES = ("cube", "sphere", "cylinder")
LABELS = ("on", "off", "undetermined")
_LABEL = re.compile(r"\b(undetermined|on|off)\b", re.IGNORECASE)
_OBJECT = re.compile(r"^[a-z]+ [a-z]+ [a-z]+$")
BLICKET, NOT_BLICKET, UNKNOWN = "blicket", "not a blicket", "unknown"


def split_objects(value: str) -> list[str]:
    return [o.strip() for o in value.split(",") if o.strip()]


def detector(statuses: dict[str, str], objects: list[str]) -> str:
    """on / off / undetermined for a set of objects under a status assignment (unseen objects are unknown)."""
    status = [statuses.get(o, UNKNOWN) for o in objects]
    if BLICKET in status:
        return "on"
    if status and all(s == NOT_BLICKET for s in status):
        return "off"
    return "undetermined"


def infer_statuses(trials: list[tuple[list[str], bool]]) -> dict[str, str] | None:
    """Statuses implied by trials (objects, lit); None when a lit trial has no identifiable cause."""
    objects = {o for objs, _ in trials for o in objs}
    not_blickets = {o for objs, lit in trials if not lit for o in objs}
    blickets: set[str] = set()
    for objs, lit in trials:
        candidates = [o for o in objs if o not in not_blickets]
        if lit and len(candidates) == 1:
            blickets.add(candidates[0])
    for objs, lit in trials:
        if lit and not any(o in blickets for o in objs):
            return None
    return {o: BLICKET if o in blickets else NOT_BLICKET if o in not_blickets else UNKNOWN for o in sorted(objects)}


def rule_text(statuses: dict[str, str]) -> str:
    def group(kind: str) -> str:
        names = [o for o, s in statuses.items() if s == kind]
        return ", ".join(names) if names else "none"

    return (
        f"Blickets: {group(BLICKET)}. Not blickets: {group(NOT_BLICKET)}. Unknown: {group(UNKNOWN)}. "
        "The detector is on if a blicket is present, off if every object is known not to be a blicket, "
        "and undetermined otherwise."
    )


def make_rule(statuses: dict[str, str]) -> Rule:
    frozen = dict(statuses)
    return Rule(rule_text(frozen), lambda value: detector(frozen, split_objects(value)))


@register_domain("acre")
class Acre(Domain):
    answer_type = AnswerType.LABEL
    labels = LABELS
    n_seen = 6
    n_test = 4

    def sample_task(self, rng: random.Random, n_seen: int, n_test: int, params: AcreParams | None) -> GeneratedTask:
        params = params or AcreParams()
        universe = [f"{c} {m} {s}" for c in COLOURS for m in MATERIALS for s in SHAPES]
        for _ in range(1000):
            pool = rng.sample(universe, params.n_objects)
            blickets = set(rng.sample(pool, rng.randint(1, min(2, params.n_objects - 1))))
            trials = []
            for _ in range(n_seen):
                objs = rng.sample(pool, rng.randint(1, min(params.max_set, len(pool))))
                trials.append((objs, any(o in blickets for o in objs)))
            statuses = infer_statuses(trials)
            if statuses is None or BLICKET not in statuses.values():
                continue
            rule = make_rule(statuses)
            seen = [Pair(", ".join(objs), "on" if lit else "off") for objs, lit in trials]
            test = self._queries(rng, pool, rule, n_test, params.max_set, {p.input for p in seen})
            if test is not None:
                meta = {"statuses": statuses, "pool": pool}
                return GeneratedTask("", self.name, tuple(seen), tuple(test), meta, rule)
        raise RuntimeError("could not generate an ACRE task; raise n_objects or max_set")

    @staticmethod
    def _queries(
        rng: random.Random, pool: list[str], rule: Rule, n: int, max_set: int, exclude: set[str]
    ) -> list[Pair] | None:
        by_label: dict[str, list[Pair]] = {label: [] for label in LABELS}
        for _ in range(20 * n):
            value = ", ".join(rng.sample(pool, rng.randint(1, min(max_set, len(pool)))))
            pair = Pair(value, rule.apply(value))
            if value not in exclude and pair not in by_label[pair.output]:
                by_label[pair.output].append(pair)
        queries: list[Pair] = []
        while len(queries) < n and any(by_label.values()):
            for label in rng.sample(LABELS, len(LABELS)):
                if by_label[label] and len(queries) < n:
                    queries.append(by_label[label].pop())
        return queries if len(queries) == n else None

    def perturb(self, task: GeneratedTask, rng: random.Random) -> Rule:
        statuses = dict(task.meta["statuses"])
        obj = rng.choice(sorted(statuses))
        statuses[obj] = rng.choice([s for s in (BLICKET, NOT_BLICKET, UNKNOWN) if s != statuses[obj]])
        return make_rule(statuses)

    def decode(self, value: object) -> str:
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise TypeError(f"ACRE objects must be strings, got {value!r}")
            return ", ".join(v.strip() for v in value)
        if not isinstance(value, str):
            raise TypeError(f"expected a string or a list of strings, got {type(value).__name__}")
        return ", ".join(split_objects(value.strip().strip("[]").replace("'", "").replace('"', "")))

    def encode_input(self, value: str) -> list[str]:
        return split_objects(value)

    def check_pair(self, pair: Pair) -> None:
        if pair.output not in LABELS:
            raise ValueError(f"output {pair.output!r} is not one of {', '.join(LABELS)}, as ACRE outputs are")
        if not all(_OBJECT.match(o) for o in split_objects(pair.input)):
            raise ValueError(f"input {pair.input!r} is not a set of 'colour material shape' objects, as in ACRE")

    def parse_output(self, text: str) -> str | None:
        for span in (answer_span(text), text):
            match = _LABEL.search(span)
            if match:
                return match.group(1).lower()
        return None


@dataclass
class AcreParams:
    n_seen: int = field(default=6, metadata={"help": "seen detector trials shown in the question"})
    n_objects: int = field(default=5, metadata={"help": "distinct objects in one task"})
    max_set: int = field(default=3, metadata={"help": "most objects on the detector in one trial"})

    def __post_init__(self) -> None:
        validate_positive(n_seen=self.n_seen, max_set=self.max_set)
        if not 2 <= self.n_objects <= len(COLOURS) * len(MATERIALS) * len(SHAPES):
            raise ValueError(f"n_objects must be between 2 and 48, got {self.n_objects}")


@register_task("acre")
class AcreTask(InductiveCoTTask):
    """Infer which objects are blickets from detector trials and predict the detector for a new set."""

    family = Family.LOGICAL
    answer_type = AnswerType.LABEL
    labels = LABELS
    description = "ACRE: blicket-detector causal induction (on / off / undetermined)"
    domain_cls = Acre
    Params = AcreParams
