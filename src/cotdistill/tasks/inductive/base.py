"""Rule-induction tasks in the ReDis / Qiu et al. format, and their chain-of-thought view.

A *rule task* (``RuleTask``) is a handful of seen input/output pairs produced by one hidden rule
plus unseen pairs to test it; JSONL lines look like
``{"idx": 0, "train": [{"input": "[1, 2]", "output": "[2, 1]"}], "test": [...]}``.
Inside the library every input and output is a canonical string (``"[1, 2]"``, ``"on"``,
``"RED RED BLUE"``); each ``Domain`` converts to and from the raw JSON values of real files.

A *domain* (``ACRE``, list functions, 1D-ARC, MiniSCAN) knows how to generate tasks whose true
rule it knows (``GeneratedTask.rule``, an executable ``Rule`` with its statement in words), how
to make plausible wrong rules (``perturb``), and how to read an output out of a model's text
(``parse_output``). Domains register in ``DOMAINS`` so loaders and pipelines find them by name.

``InductiveCoTTask`` turns a domain into a registered ``ProceduralTask``: question = seen
examples + one query input; rationale = the rule in words, applied to the query, then the
answer sentence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.registry import Registry
from cotdistill.tasks.base import Example, Family, ProceduralTask

QUESTION_HEADER = "Find the rule that maps each input to its output, then apply it to the new input."


class RuleError(ValueError):
    """A rule cannot be applied to an input (unknown word, malformed input)."""


@dataclass(frozen=True)
class Rule:
    """An executable hypothesis: ``text`` states it in words, ``fn`` maps an input string to an output string.

    ``fn`` raises ``RuleError`` when the rule does not apply to the input. Rules compare equal by text.
    """

    text: str
    fn: Callable[[str], str] = field(compare=False, repr=False)

    def apply(self, value: str) -> str:
        return self.fn(value)


@dataclass(frozen=True)
class Pair:
    """One input/output pair; ``type`` is a real file's query category (ACRE: direct, indirect, ...)."""

    input: str
    output: str
    type: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RuleTask:
    """One rule-induction task: seen pairs (``train``) and unseen pairs (``test``) from one rule."""

    idx: str
    domain: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class GeneratedTask(RuleTask):
    """A procedurally generated task whose true rule is known (the offline oracle's knowledge)."""

    rule: Rule | None = field(default=None, compare=False)


def format_pairs(pairs: Sequence[Pair]) -> str:
    return "\n".join(f"Input: {p.input}\nOutput: {p.output}" for p in pairs)


def format_question(seen: Sequence[Pair], query: str) -> str:
    """The CoT question: header, the seen examples, the new input."""
    return f"{QUESTION_HEADER}\n{format_pairs(seen)}\nNew input: {query}"


_LIST_SPAN = re.compile(r"\[[^\[\]]*\]")
_MARKER = re.compile(r"(?:the\s+(?:final\s+)?answer\s+is|output\s*:)\s*(.*)", re.IGNORECASE)


def answer_span(text: str) -> str:
    """Text after the first ``Output:`` / ``The answer is`` marker (first line), else the whole text."""
    match = _MARKER.search(text)
    return match.group(1).split("\n")[0] if match else text


def canonical_list(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def parse_int_list(text: str) -> list[int]:
    """``"[1, 2]"`` -> ``[1, 2]``; raises RuleError when the text is not a list of integers."""
    normalized = answers.normalize_list(text)
    if normalized is None:
        raise RuleError(f"not a list: {text!r}")
    inner = normalized[1:-1].strip()
    if not inner:
        return []
    try:
        return [int(part) for part in inner.split(",")]
    except ValueError:
        raise RuleError(f"not a list of integers: {text!r}") from None


class Domain:
    """One family of rule-induction tasks (ACRE, list functions, 1D-ARC, MiniSCAN).

    Subclasses set ``name``, ``answer_type``, ``labels``, ``n_seen`` / ``n_test`` (the sizes of
    the published data) and implement ``sample_task``, ``perturb`` and the codec methods.
    """

    name: ClassVar[str] = ""
    answer_type: ClassVar[AnswerType] = AnswerType.TEXT
    labels: ClassVar[tuple[str, ...]] = ()
    n_seen: ClassVar[int] = 4
    n_test: ClassVar[int] = 4

    def sample_task(self, rng: random.Random, n_seen: int, n_test: int, params: Any) -> GeneratedTask:
        """A task with ``n_seen`` seen and ``n_test`` unseen pairs and its true rule (``idx`` left empty)."""
        raise NotImplementedError

    def perturb(self, task: GeneratedTask, rng: random.Random) -> Rule:
        """A plausible but (usually) wrong rule for ``task``: other parameters or another rule family."""
        raise NotImplementedError

    # ------------------------------------------------------------------ codec for real files

    def decode(self, value: Any) -> str:
        """A raw JSON input or output value -> canonical string; raises ValueError/TypeError."""
        if isinstance(value, list):
            return canonical_list(_ints(value))
        if not isinstance(value, str):
            raise TypeError(f"expected a string or a list, got {type(value).__name__}")
        text = value.strip()
        if text.startswith("["):
            return canonical_list(_ints_from_text(text))
        return text

    def encode_input(self, value: str) -> Any:
        """Canonical input string -> the JSON value written to ReDis-format files."""
        return value

    def check_pair(self, pair: Pair) -> None:
        """Raise ValueError when a decoded pair cannot belong to this domain (a file of another family)."""

    # ------------------------------------------------------------------ reading model outputs

    def parse_output(self, text: str) -> str | None:
        """The canonical output stated in a model's response, or None."""
        raise NotImplementedError

    def normalize(self, output: str) -> str | None:
        """Canonical form of a gold output (what ``parse_output`` results are compared with)."""
        return self.parse_output(output)


class ListDomain(Domain):
    """Domains whose inputs and outputs are lists of integers; the first ``[...]`` is the output."""

    answer_type = AnswerType.LIST

    def check_pair(self, pair: Pair) -> None:
        for value in (pair.input, pair.output):
            if not value.startswith("["):
                raise ValueError(f"{value!r} is not a list of integers, as {self.name} inputs and outputs are")

    def parse_output(self, text: str) -> str | None:
        for span in (answer_span(text), text):
            match = _LIST_SPAN.search(span)
            if match:
                try:
                    return canonical_list(parse_int_list(match.group(0)))
                except RuleError:
                    return None
        return None


def _ints(values: list[Any]) -> list[int]:
    out = []
    for v in values:
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, str))
            or (isinstance(v, str) and not v.strip().lstrip("-").isdigit())
        ):
            raise TypeError(f"{values!r} is not a list of integers")
        out.append(int(v))
    return out


def _ints_from_text(text: str) -> list[int]:
    try:
        return parse_int_list(text)
    except RuleError as exc:
        raise ValueError(str(exc)) from None


DOMAINS: Registry[type[Domain]] = Registry("inductive domain")


def register_domain(name: str):
    """Class decorator: register a Domain under ``name`` (also sets ``cls.name``)."""

    def decorator(cls: type[Domain]) -> type[Domain]:
        cls.name = name
        return DOMAINS.register(name)(cls)

    return decorator


def get_domain(name: str) -> Domain:
    return DOMAINS.get(name)()


def sample_tasks(
    domain: str | Domain, n: int, seed: int, params: Any = None, *, n_seen: int | None = None, n_test: int | None = None
) -> list[GeneratedTask]:
    """``n`` generated tasks of a domain, deterministic for ``seed``, ids ``<domain>-<i>``."""
    dom = get_domain(domain) if isinstance(domain, str) else domain
    rng = random.Random(f"{dom.name}:{seed}")
    tasks = []
    for i in range(n):
        task = dom.sample_task(rng, n_seen or dom.n_seen, n_test or dom.n_test, params)
        tasks.append(GeneratedTask(f"{dom.name}-{i}", dom.name, task.train, task.test, task.meta, task.rule))
    return tasks


def describe_application(rule: Rule, query: str, answer: str) -> str:
    """The CoT rationale for one query: the rule, its application, the answer sentence."""
    return f"The rule is: {rule.text} Applying the rule to {query} gives {answer}. {answers.answer_sentence(answer)}"


class InductiveCoTTask(ProceduralTask):
    """CoT view of a domain: each example is one task's seen pairs plus one of its unseen inputs.

    Subclasses set ``domain_cls`` and a ``Params`` dataclass with at least ``n_seen`` (the
    number of seen pairs shown in the question).
    """

    family = Family.INDUCTIVE
    domain_cls: ClassVar[type[Domain]]

    def __init__(self, params: Any = None):
        super().__init__(params)
        self.domain = self.domain_cls()

    def generate(self, rng: random.Random) -> Example:
        task = self.domain.sample_task(rng, self.params.n_seen, 1, self.params)
        query = task.test[0]
        assert task.rule is not None
        return Example(
            id="",
            domain="",
            question=format_question(task.train, query.input),
            answer=query.output,
            rationale=describe_application(task.rule, query.input, query.output),
            meta={"rule": task.rule.text},
        )


def validate_positive(**values: int) -> None:
    """Raise ValueError naming the first field whose value is below 1."""
    for key, value in values.items():
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")


def validate_rule_names(rules: list[str], known: dict) -> None:
    """Raise ValueError listing the names in ``rules`` that are not keys of ``known``."""
    unknown = [r for r in rules if r not in known]
    if unknown:
        raise ValueError(f"unknown rule families {unknown} (known: {', '.join(known)})")
