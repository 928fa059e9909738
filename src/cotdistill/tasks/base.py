"""The record every stage reads (``Example``) and the task registry.

A task turns a seed into examples and scores predictions. Procedural tasks generate an
unbounded stream of examples from a seeded RNG and assign each one to a split by a hash of its
question, so splits are disjoint by construction and deterministic for a seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.errors import ConfigError
from cotdistill.registry import Registry

SPLITS = ("train", "dev", "test")
_SPLIT_BUCKETS = {"train": range(0, 80), "dev": range(80, 90), "test": range(90, 100)}


class Family(StrEnum):
    ARITHMETIC = "arithmetic"
    SYMBOLIC = "symbolic"
    LOGICAL = "logical"
    INDUCTIVE = "inductive"
    MULTIHOP = "multihop"
    OTHER = "other"


@dataclass(frozen=True)
class Example:
    """One question.

    ``answer`` is the gold answer as a string (empty for unlabelled questions);
    ``rationale`` is a step-by-step solution ending in the answer sentence, when known.
    """

    id: str
    domain: str
    question: str
    answer: str
    rationale: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Example:
        """Build from a JSON object; raises KeyError/TypeError/ValueError on a bad record."""
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        for key in ("id", "domain", "question", "answer"):
            if key not in data:
                raise KeyError(key)
            if not isinstance(data[key], str):
                raise TypeError(f"field '{key}' must be a string, got {type(data[key]).__name__}")
        rationale = data.get("rationale")
        if rationale is not None and not isinstance(rationale, str):
            raise TypeError("field 'rationale' must be a string or null")
        meta = data.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise TypeError("field 'meta' must be an object")
        return cls(data["id"], data["domain"], data["question"], data["answer"], rationale, dict(meta))

    @property
    def content_hash(self) -> str:
        """Hash of the question text (what split-disjointness is checked on)."""
        return question_hash(self.question)


def question_hash(question: str) -> str:
    return hashlib.sha256(question.strip().encode("utf-8")).hexdigest()[:16]


def split_of(question: str) -> str:
    """The split a procedurally generated question belongs to (80/10/10 by hash)."""
    bucket = int(question_hash(question), 16) % 100
    return next(name for name, span in _SPLIT_BUCKETS.items() if bucket in span)


def stable_seed(*parts: object) -> int:
    """A seed derived from parts, stable across processes (unlike ``hash``)."""
    text = "\x1f".join(str(p) for p in parts)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)


class Task:
    """Base class of all tasks. Subclasses set the class attributes and implement ``examples``.

    ``Params`` is a dataclass of the task's knobs (difficulty, lengths); ``get_task(name, params)``
    validates a user's dict against it.
    """

    name: ClassVar[str] = ""
    family: ClassVar[Family] = Family.OTHER
    answer_type: ClassVar[AnswerType] = AnswerType.TEXT
    labels: ClassVar[tuple[str, ...]] = ()
    has_rationale: ClassVar[bool] = True
    source: ClassVar[str] = "procedural"
    description: ClassVar[str] = ""

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any = None):
        self.params = params if params is not None else self.Params()

    @property
    def answer_instruction(self) -> str:
        """The sentence appended to prompts so the answer lands where the extractor looks."""
        return answers.instruction(self.answer_type, self.labels)

    @classmethod
    def domain_params(cls, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """``{name_suffix: params}``: the domains one suite entry stands for (one, unless overridden)."""
        return {"": dict(params)}

    def set_answer_format(self, answer_type: AnswerType | str, labels: Sequence[str] = ()) -> None:
        """Fix how answers are extracted (e.g. as recorded in a suite manifest, without reading files)."""
        self.answer_type = AnswerType(answer_type)
        self.labels = tuple(labels)

    def examples(self, split: str, n: int, seed: int) -> list[Example]:
        raise NotImplementedError

    def score(self, prediction: str, example: Example) -> answers.Score:
        """Score a model's full output text against the example's gold answer."""
        return answers.score(prediction, example.answer, self.answer_type, self.labels)


class ProceduralTask(Task):
    """A task whose examples come from ``generate(rng)``; splits are assigned by question hash."""

    max_attempts_per_example: ClassVar[int] = 200

    def generate(self, rng: random.Random) -> Example:
        """Return one example with ``id``/``domain`` left empty (filled in by ``examples``)."""
        raise NotImplementedError

    def stream(self, seed: int) -> Iterator[Example]:
        rng = random.Random(stable_seed(self.name, seed))
        while True:
            yield self.generate(rng)

    def examples(self, split: str, n: int, seed: int) -> list[Example]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
        out: list[Example] = []
        seen: set[str] = set()
        attempts = 0
        for example in self.stream(seed):
            if len(out) >= n:
                break
            attempts += 1
            if attempts > self.max_attempts_per_example * max(n, 1):
                raise ConfigError(
                    f"task '{self.name}': could only make {len(out)} distinct '{split}' examples of {n} "
                    "requested; raise the task's difficulty knobs or ask for fewer"
                )
            key = example.content_hash
            if key in seen or split_of(example.question) != split:
                continue
            seen.add(key)
            out.append(dataclasses.replace(example, id=f"{self.name}-{key}", domain=self.name))
        return out


TASKS: Registry[type[Task]] = Registry("task")


def register_task(name: str):
    """Class decorator: register a Task subclass under ``name`` (also sets ``cls.name``)."""

    def decorator(cls: type[Task]) -> type[Task]:
        cls.name = name
        return TASKS.register(name)(cls)

    return decorator


def get_task(name: str, params: Mapping[str, Any] | None = None) -> Task:
    """Instantiate a registered task, validating ``params`` against its ``Params`` dataclass."""
    from cotdistill.config import from_dict

    cls = TASKS.get(name)
    parsed = from_dict(cls.Params, dict(params or {}), where=f"task '{name}' params")
    return cls(parsed)
