"""MiniSCAN (Lake et al. 2019; ReDis format): pseudoword instructions -> colour words.

A grammar has primitive pseudowords (each names a colour) and three function words, from the
tightest-binding to the loosest: a postfix repeat (``x W`` -> x two or three times), an infix
combiner (``x W y`` -> e.g. x y x) and an infix reorderer (``x W y`` -> e.g. y x). Wrong rules
swap two colours, change the repeat count or change a function's pattern.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass, field

from cotdistill.answers import AnswerType
from cotdistill.tasks.base import register_task
from cotdistill.tasks.inductive.base import (
    Domain,
    GeneratedTask,
    InductiveCoTTask,
    Pair,
    Rule,
    RuleError,
    register_domain,
    validate_positive,
)

COLOURS = ("RED", "BLUE", "GREEN", "YELLOW", "PURPLE", "PINK")
_ONSETS = ("bl", "dr", "gl", "k", "m", "pl", "r", "s", "sch", "st", "t", "thr", "w", "z", "f", "n", "pr", "sk", "mc")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ie", "oo", "ou", "ea", "ui")
_CODAS = ("", "ff", "n", "ks", "lt", "p", "rt", "sh", "x", "m", "nd", "z", "ck")
COMBINE_PATTERNS = ("aba", "abb", "aab", "bab")
REORDER_PATTERNS = ("ba", "ab", "bba")
_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
_WORD = re.compile(r"[A-Za-z]+")
_MARKER = re.compile(r"(?:the\s+(?:final\s+)?answer\s+is|output\s*:)\s*(.*)", re.IGNORECASE)


@dataclass(frozen=True)
class Grammar:
    """A MiniSCAN interpretation: primitives, the three function words and their semantics."""

    primitives: tuple[tuple[str, str], ...]  # (pseudoword, COLOUR)
    repeat_word: str
    repeat_count: int
    combine_word: str
    combine_pattern: str  # over a = left, b = right
    reorder_word: str
    reorder_pattern: str

    def text(self) -> str:
        def pattern(p: str) -> str:
            return " ".join({"a": "x", "b": "y"}[c] for c in p)

        prims = " ".join(f"'{w}' means {c}." for w, c in self.primitives)
        return (
            f"{prims} 'x {self.repeat_word}' means x {_COUNT_WORDS[self.repeat_count]} times. "
            f"'x {self.combine_word} y' means {pattern(self.combine_pattern)}. "
            f"'x {self.reorder_word} y' means {pattern(self.reorder_pattern)}. "
            f"{self.repeat_word} binds tightest, then {self.combine_word}, then {self.reorder_word}."
        )

    def interpret(self, instruction: str) -> str:
        return " ".join(self._expr(instruction.split()))

    def _expr(self, words: list[str]) -> list[str]:
        return _fold(_split(words, self.reorder_word), self._term, self.reorder_pattern)

    def _term(self, words: list[str]) -> list[str]:
        return _fold(_split(words, self.combine_word), self._unit, self.combine_pattern)

    def _unit(self, words: list[str]) -> list[str]:
        lexicon = dict(self.primitives)
        if words[0] not in lexicon or any(w != self.repeat_word for w in words[1:]):
            raise RuleError(f"cannot interpret {' '.join(words)!r}")
        return [lexicon[words[0]]] * (self.repeat_count ** (len(words) - 1))


def _split(words: list[str], sep: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for w in words:
        if w == sep:
            parts.append([])
        else:
            parts[-1].append(w)
    if any(not p for p in parts):
        raise RuleError(f"'{sep}' needs words on both sides")
    return parts


def _fold(parts: list[list[str]], inner, pattern: str) -> list[str]:
    result = inner(parts[0])
    for part in parts[1:]:
        right = inner(part)
        result = [w for c in pattern for w in (result if c == "a" else right)]
    return result


def make_rule(grammar: Grammar) -> Rule:
    return Rule(grammar.text(), grammar.interpret)


def pseudowords(rng: random.Random, n: int) -> list[str]:
    words: list[str] = []
    while len(words) < n:
        word = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        if len(word) >= 3 and word not in words:
            words.append(word)
    return words


def random_instruction(rng: random.Random, g: Grammar, max_words: int) -> str:
    prims = [w for w, _ in g.primitives]

    def unit() -> list[str]:
        return [rng.choice(prims)] + ([g.repeat_word] if rng.random() < 0.4 else [])

    def term() -> list[str]:
        return unit() + ([g.combine_word, *unit()] if rng.random() < 0.4 else [])

    while True:
        words = term() + ([g.reorder_word, *term()] if rng.random() < 0.4 else [])
        if 1 < len(words) <= max_words:
            return " ".join(words)


@register_domain("miniscan")
class MiniScan(Domain):
    answer_type = AnswerType.TEXT
    n_seen = 14
    n_test = 10

    def sample_task(self, rng: random.Random, n_seen: int, n_test: int, params: MiniScanParams | None) -> GeneratedTask:
        params = params or MiniScanParams()
        words = pseudowords(rng, params.n_primitives + 3)
        colours = rng.sample(COLOURS, params.n_primitives)
        grammar = Grammar(
            primitives=tuple(zip(words[: params.n_primitives], colours)),
            repeat_word=words[-3],
            repeat_count=rng.choice((2, 3)),
            combine_word=words[-2],
            combine_pattern=rng.choice(COMBINE_PATTERNS),
            reorder_word=words[-1],
            reorder_pattern=rng.choice(REORDER_PATTERNS),
        )
        rule = make_rule(grammar)
        inputs = [w for w, _ in grammar.primitives][:n_seen]
        for _ in range(200 * (n_seen + n_test)):
            if len(inputs) == n_seen + n_test:
                break
            value = random_instruction(rng, grammar, params.max_words)
            if value not in inputs:
                inputs.append(value)
        pairs = tuple(Pair(v, rule.apply(v)) for v in inputs)
        return GeneratedTask(
            "", self.name, pairs[:n_seen], pairs[n_seen:], {"grammar": dataclasses.asdict(grammar)}, rule
        )

    def perturb(self, task: GeneratedTask, rng: random.Random) -> Rule:
        g = _grammar(task.meta["grammar"])
        choice = rng.randrange(4)
        if choice == 0:
            prims = list(g.primitives)
            i, j = rng.sample(range(len(prims)), 2)
            prims[i], prims[j] = (prims[i][0], prims[j][1]), (prims[j][0], prims[i][1])
            return make_rule(dataclasses.replace(g, primitives=tuple(prims)))
        if choice == 1:
            count = rng.choice([c for c in _COUNT_WORDS if c != g.repeat_count])
            return make_rule(dataclasses.replace(g, repeat_count=count))
        if choice == 2:
            pattern = rng.choice([p for p in COMBINE_PATTERNS if p != g.combine_pattern])
            return make_rule(dataclasses.replace(g, combine_pattern=pattern))
        pattern = rng.choice([p for p in REORDER_PATTERNS if p != g.reorder_pattern])
        return make_rule(dataclasses.replace(g, reorder_pattern=pattern))

    def decode(self, value: object) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return " ".join(value.split())

    def check_pair(self, pair: Pair) -> None:
        if not re.fullmatch(r"[A-Z]+(?: [A-Z]+)*", pair.output):
            raise ValueError(f"output {pair.output!r} is not a sequence of colour words, as MiniSCAN outputs are")
        if not re.fullmatch(r"[a-z]+(?: [a-z]+)*", pair.input):
            raise ValueError(f"input {pair.input!r} is not a sequence of pseudowords, as MiniSCAN inputs are")

    def parse_output(self, text: str) -> str | None:
        match = _MARKER.search(text)
        if match:
            span = match.group(1).split("\n")[0]
        else:
            lines = [line for line in text.splitlines() if line.strip()]
            span = lines[-1] if lines else ""
        words = [w.upper() for w in _WORD.findall(span)]
        return " ".join(words) or None


def _grammar(data: dict) -> Grammar:
    return Grammar(**{**data, "primitives": tuple(tuple(p) for p in data["primitives"])})


@dataclass
class MiniScanParams:
    n_seen: int = field(default=8, metadata={"help": "seen instruction/output pairs shown in the question"})
    n_primitives: int = field(default=4, metadata={"help": "primitive pseudowords (each names a colour)"})
    max_words: int = field(default=5, metadata={"help": "longest instruction, in words"})

    def __post_init__(self) -> None:
        validate_positive(n_seen=self.n_seen)
        if not 2 <= self.n_primitives <= len(COLOURS):
            raise ValueError(f"n_primitives must be between 2 and {len(COLOURS)}, got {self.n_primitives}")
        if self.max_words < 3:
            raise ValueError(f"max_words must be >= 3, got {self.max_words}")


@register_task("miniscan")
class MiniScanTask(InductiveCoTTask):
    """Infer a pseudoword-to-colour grammar from seen instructions and translate a new one."""

    answer_type = AnswerType.TEXT
    description = "MiniSCAN: compositional pseudoword instructions -> colour words"
    domain_cls = MiniScan
    Params = MiniScanParams
