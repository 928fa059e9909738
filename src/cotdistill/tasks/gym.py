"""reasoning-gym datasets as extra domains ``gym_<name>`` (answers and verifiers, no rationales).

Examples come from ``reasoning_gym.create_dataset(name, seed=..., size=...)`` indexed 0, 1, 2, ...
with a seed derived from the task name and the caller's seed, and are assigned to splits by
question hash like every procedural task, so splits are disjoint and deterministic for a seed.
The gym's own metadata travels in ``meta["gym"]`` so that ``score`` can call the dataset's
verifier (``score_answer``) on the extracted answer; a score of 1.0 counts as correct.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.errors import ConfigError
from cotdistill.tasks.base import Example, Family, ProceduralTask, register_task, stable_seed

# Large enough that no split request runs off the end; reasoning-gym datasets are lazy.
_GYM_SIZE = 10_000_000


@dataclass(frozen=True)
class GymDomain:
    """One wrapped dataset: reasoning-gym name, how answers look, and default config overrides."""

    gym_name: str
    family: Family
    answer_type: AnswerType
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


GYM_DOMAINS = (
    GymDomain(
        "basic_arithmetic",
        Family.ARITHMETIC,
        AnswerType.NUMBER,
        "evaluate a short + - * expression",
        {"max_terms": 3, "max_digits": 2, "operators": ["+", "-", "*"]},
    ),
    GymDomain(
        "chain_sum",
        Family.ARITHMETIC,
        AnswerType.NUMBER,
        "sum a chain of + and - terms",
        {"max_terms": 4, "max_digits": 2},
    ),
    GymDomain("gsm_symbolic", Family.ARITHMETIC, AnswerType.NUMBER, "GSM8K-style templated word problems"),
    GymDomain("leg_counting", Family.ARITHMETIC, AnswerType.NUMBER, "count the legs of a list of animals"),
    GymDomain("gcd", Family.ARITHMETIC, AnswerType.NUMBER, "greatest common divisor", {"max_value": 100}),
    GymDomain("lcm", Family.ARITHMETIC, AnswerType.NUMBER, "least common multiple"),
    GymDomain("simple_equations", Family.ARITHMETIC, AnswerType.NUMBER, "solve a linear equation for x"),
    GymDomain("letter_counting", Family.SYMBOLIC, AnswerType.NUMBER, "count a letter in a text", {"max_words": 8}),
    GymDomain("spell_backward", Family.SYMBOLIC, AnswerType.TEXT, "spell a word backward"),
    GymDomain("word_sequence_reversal", Family.SYMBOLIC, AnswerType.TEXT, "reverse a list of words"),
    GymDomain("word_sorting", Family.SYMBOLIC, AnswerType.TEXT, "sort words by ASCII order"),
    GymDomain("number_sorting", Family.SYMBOLIC, AnswerType.LIST, "sort numbers ascending or descending"),
    GymDomain("syllogism", Family.LOGICAL, AnswerType.YESNO, "does a conclusion follow from two premises"),
    GymDomain("family_relationships", Family.LOGICAL, AnswerType.TEXT, "name a family relation from a story"),
)


class GymTask(ProceduralTask):
    """Base class of the generated ``gym_<name>`` tasks; ``domain`` says which dataset."""

    has_rationale = False
    source = "reasoning-gym"
    domain: ClassVar[GymDomain]

    @dataclass
    class Params:
        config: dict[str, Any] = field(
            default_factory=dict,
            metadata={"help": "reasoning-gym config fields (e.g. max_terms), on top of cotdistill's defaults"},
        )

    def gym_config(self) -> dict[str, Any]:
        return {**self.domain.defaults, **self.params.config}

    def __init__(self, params: Any = None):
        super().__init__(params)
        self._datasets: dict[int, Any] = {}

    def _dataset(self, seed: int) -> Any:
        """The reasoning-gym dataset for ``seed`` (made once: some take seconds to build)."""
        import reasoning_gym

        if seed not in self._datasets:
            try:
                self._datasets[seed] = reasoning_gym.create_dataset(
                    self.domain.gym_name, seed=seed, size=_GYM_SIZE, **self.gym_config()
                )
            except (TypeError, ValueError, AssertionError) as exc:
                raise ConfigError(f"task '{self.name}' params.config: reasoning-gym rejected it: {exc}") from None
        return self._datasets[seed]

    @property
    def _verifier(self) -> Any:
        """Any dataset of this config can verify (``score_answer`` reads the entry, not the seed)."""
        return next(iter(self._datasets.values())) if self._datasets else self._dataset(0)

    def stream(self, seed: int) -> Iterator[Example]:
        dataset = self._dataset(stable_seed(self.name, seed) % 2**31)
        for index in range(_GYM_SIZE):
            entry = dataset[index]
            meta = {"gym": _jsonable(entry.get("metadata", {})), "gym_index": index}
            yield Example("", "", entry["question"], str(entry["answer"]), None, meta)

    def score(self, prediction: str, example: Example) -> answers.Score:
        """Strict: the answer-sentence span passes the gym verifier; flexible: the span or the last answer-shaped span does."""
        entry = {"question": example.question, "answer": example.answer, "metadata": example.meta.get("gym", {})}
        strict_span = _strip(answers.answer_span(prediction))
        flexible_span = strict_span
        if flexible_span is None:
            flexible_span = answers.extract(prediction, self.answer_type, self.labels, strict=False)
            if self.answer_type is AnswerType.TEXT:
                flexible_span = _strip(_last_line(prediction))
        return answers.Score(
            strict=self._passes(strict_span, entry),
            flexible=self._passes(flexible_span, entry),
            extracted=flexible_span,
            extracted_strict=strict_span,
        )

    def _passes(self, span: str | None, entry: dict[str, Any]) -> bool:
        if span is None:
            return False
        try:
            return float(self._verifier.score_answer(span, entry)) >= 1.0 - 1e-9
        except Exception:  # noqa: BLE001 - a verifier crashing on odd model output scores as wrong
            return False


def _strip(span: str | None) -> str | None:
    if span is None:
        return None
    span = span.strip().rstrip(".").strip()
    return span or None


def _last_line(text: str) -> str | None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _jsonable(value: Any) -> Any:
    """Metadata as plain JSON data (tuples -> lists, unknown objects -> str)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return str(value)


def _register(domain: GymDomain) -> type[GymTask]:
    cls = type(
        f"Gym_{domain.gym_name}",
        (GymTask,),
        {
            "domain": domain,
            "family": domain.family,
            "answer_type": domain.answer_type,
            "description": f"reasoning-gym {domain.gym_name}: {domain.description}",
            "__module__": __name__,
        },
    )
    return register_task(f"gym_{domain.gym_name}")(cls)


for _domain in GYM_DOMAINS:
    _register(_domain)
