"""1D-ARC (Xu et al. 2023; ReDis format): one row of colour ints 0-9 (0 = background) per grid.

Rule families: move the block k cells left/right, fill the gap between two cells, hollow a
block, mirror the row, recolour, remove isolated noise cells, extend the block to the right
edge. Every rule is defined on any row, so wrong rules can be applied to any input.
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

Row = list[int]


def runs(row: Row) -> list[tuple[int, int, int]]:
    """Maximal runs of one non-zero colour as ``(start, end_exclusive, colour)``."""
    out, i = [], 0
    while i < len(row):
        if row[i] == 0:
            i += 1
            continue
        j = i
        while j < len(row) and row[j] == row[i]:
            j += 1
        out.append((i, j, row[i]))
        i = j
    return out


def shift(row: Row, k: int) -> Row:
    out = [0] * len(row)
    for i, v in enumerate(row):
        if v and 0 <= i + k < len(row):
            out[i + k] = v
    return out


def fill_gap(row: Row) -> Row:
    cells = [i for i, v in enumerate(row) if v]
    out = list(row)
    if len(cells) >= 2:
        for i in range(cells[0], cells[-1] + 1):
            out[i] = row[cells[0]]
    return out


def hollow(row: Row) -> Row:
    out = list(row)
    for start, end, _ in runs(row):
        for i in range(start + 1, end - 1):
            out[i] = 0
    return out


def denoise(row: Row) -> Row:
    out = list(row)
    for start, end, _ in runs(row):
        if end - start == 1:
            out[start] = 0
    return out


def extend_right(row: Row) -> Row:
    cells = [i for i, v in enumerate(row) if v]
    if not cells:
        return list(row)
    return row[: cells[0]] + [row[cells[0]]] * (len(row) - cells[0])


def recolor(row: Row, source: int, target: int) -> Row:
    return [target if v == source else v for v in row]


def _block_row(rng: random.Random, length: int, colour: int, size: int, lo: int = 0, hi: int | None = None) -> Row:
    hi = length - size if hi is None else hi
    start = rng.randint(lo, max(lo, hi))
    row = [0] * length
    for i in range(start, min(length, start + size)):
        row[i] = colour
    return row


def _moving_block(rng: random.Random, colour: int, k: int, length: int) -> Row:
    size = rng.randint(1, max(1, min(4, length - abs(k) - 1)))
    lo, hi = (0, length - size - k) if k > 0 else (-k, length - size)
    return _block_row(rng, length, colour, size, lo, hi)


def _two_cells(rng: random.Random, colour: int, k: int, length: int) -> Row:
    i = rng.randint(0, length - 3)
    j = rng.randint(i + 2, length - 1)
    row = [0] * length
    row[i] = row[j] = colour
    return row


def _noisy_block(rng: random.Random, colour: int, k: int, length: int) -> Row:
    row = _block_row(rng, length, colour, rng.randint(3, max(3, length // 2)))
    free = [i for i in range(length) if not any(row[max(0, i - 1) : i + 2])]
    for i in rng.sample(free, min(len(free), rng.randint(1, 2))):
        if not any(row[max(0, i - 1) : i + 2]):
            row[i] = colour
    return row


def _long_block(rng: random.Random, colour: int, k: int, length: int) -> Row:
    return _block_row(rng, length, colour, rng.randint(3, max(3, length - 2)))


def _asymmetric_row(rng: random.Random, colour: int, k: int, length: int) -> Row:
    row = _block_row(rng, length, colour, rng.randint(1, max(1, length // 3)))
    return row if row != row[::-1] else shift(row, 1)


def _block_off_the_edge(rng: random.Random, colour: int, k: int, length: int) -> Row:
    size = rng.randint(1, max(1, length // 2))
    return _block_row(rng, length, colour, size, 0, length - size - 1)


@dataclass(frozen=True)
class Family:
    """A rule family: ``params(colour)`` lists its parameter choices, ``text``/``fn`` state and apply it,
    ``inputs(rng, colour, k, length)`` samples a row on which the rule visibly does something."""

    name: str
    params: Callable[[int], tuple[int, ...]]
    text: Callable[[int, int], str]
    fn: Callable[[Row, int, int], Row]
    inputs: Callable[[random.Random, int, int, int], Row]


def _direction(k: int) -> str:
    return f"{abs(k)} cell{'s' if abs(k) > 1 else ''} to the {'right' if k > 0 else 'left'}"


FAMILIES: tuple[Family, ...] = (
    Family(
        "move",
        lambda c: (1, 2, 3, -1, -2, -3),
        lambda c, k: f"Move the block {_direction(k)}.",
        lambda row, c, k: shift(row, k),
        _moving_block,
    ),
    Family(
        "fill",
        lambda c: (0,),
        lambda c, k: "Fill the gap between the two coloured cells with their colour.",
        lambda row, c, k: fill_gap(row),
        _two_cells,
    ),
    Family(
        "hollow",
        lambda c: (0,),
        lambda c, k: "Keep the two end cells of the block and clear its inside.",
        lambda row, c, k: hollow(row),
        _long_block,
    ),
    Family(
        "mirror",
        lambda c: (0,),
        lambda c, k: "Mirror the whole row from left to right.",
        lambda row, c, k: row[::-1],
        _asymmetric_row,
    ),
    Family(
        "recolor",
        lambda c: tuple(d for d in range(1, 10) if d != c),
        lambda c, k: f"Change every cell of colour {c} to colour {k}.",
        lambda row, c, k: recolor(row, c, k),
        _block_off_the_edge,
    ),
    Family(
        "denoise",
        lambda c: (0,),
        lambda c, k: "Remove the isolated single cells and keep the long block.",
        lambda row, c, k: denoise(row),
        _noisy_block,
    ),
    Family(
        "extend",
        lambda c: (0,),
        lambda c, k: "Extend the block to the right edge of the row.",
        lambda row, c, k: extend_right(row),
        _block_off_the_edge,
    ),
)
FAMILIES_BY_NAME = {f.name: f for f in FAMILIES}


def make_rule(family: Family, colour: int, k: int) -> Rule:
    def apply(value: str) -> str:
        return canonical_list(family.fn(parse_int_list(value), colour, k))

    return Rule(family.text(colour, k), apply)


@register_domain("arc1d")
class Arc1D(ListDomain):
    n_seen = 3
    n_test = 1

    def sample_task(self, rng: random.Random, n_seen: int, n_test: int, params: Arc1DParams | None) -> GeneratedTask:
        params = params or Arc1DParams()
        names = params.rules or list(FAMILIES_BY_NAME)
        family = FAMILIES_BY_NAME[rng.choice(names)]
        colour = rng.randint(1, 9)
        k = rng.choice(family.params(colour))
        rule = make_rule(family, colour, k)
        length = rng.randint(params.min_len, params.max_len)
        pairs: list[Pair] = []
        inputs: set[str] = set()
        for _ in range(100 * (n_seen + n_test)):
            value = canonical_list(family.inputs(rng, colour, k, length))
            if value in inputs:
                continue
            inputs.add(value)
            pairs.append(Pair(value, rule.apply(value)))
            if len(pairs) == n_seen + n_test:
                break
        meta = {"family": family.name, "colour": colour, "k": k}
        return GeneratedTask("", self.name, tuple(pairs[:n_seen]), tuple(pairs[n_seen:]), meta, rule)

    def perturb(self, task: GeneratedTask, rng: random.Random) -> Rule:
        family, colour = FAMILIES_BY_NAME[task.meta["family"]], task.meta["colour"]
        others = [p for p in family.params(colour) if p != task.meta["k"]]
        if others and rng.random() < 0.5:
            return make_rule(family, colour, rng.choice(others))
        other = rng.choice([f for f in FAMILIES if f.name != family.name])
        return make_rule(other, colour, rng.choice(other.params(colour)))


@dataclass
class Arc1DParams:
    n_seen: int = field(default=3, metadata={"help": "seen input/output rows shown in the question"})
    min_len: int = field(default=8, metadata={"help": "shortest row"})
    max_len: int = field(default=10, metadata={"help": "longest row"})
    rules: list[str] = field(
        default_factory=list, metadata={"help": f"rule families (empty: all of {', '.join(FAMILIES_BY_NAME)})"}
    )

    def __post_init__(self) -> None:
        validate_positive(n_seen=self.n_seen)
        if self.min_len < 6:
            raise ValueError(f"min_len must be >= 6, got {self.min_len}")
        if self.max_len < self.min_len:
            raise ValueError(f"max_len must be >= min_len ({self.min_len}), got {self.max_len}")
        validate_rule_names(self.rules, FAMILIES_BY_NAME)


@register_task("arc1d")
class Arc1DTask(InductiveCoTTask):
    """Infer a 1D-ARC row transformation from seen rows and apply it to a new row."""

    answer_type = AnswerType.LIST
    description = "1D-ARC: infer a row-of-colours transformation (move, fill, hollow, mirror, ...) and apply it"
    domain_cls = Arc1D
    Params = Arc1DParams
