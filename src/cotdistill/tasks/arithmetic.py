"""Arithmetic tasks: multi-step word problems in four surface domains, and chained expressions.

The four word-problem domains (``arith_shopping``, ``arith_cooking``, ``arith_travel``,
``arith_sport``) share one underlying skill: a start quantity (a count, or ``a`` groups of ``b``)
followed by additions, subtractions and multiplications of small integers. Only the vocabulary
and sentence templates differ, which is what makes them a domain-shift benchmark. Every example's
rationale writes one equation per step (``3 * 4 = 12. 12 + 5 = 17. The answer is 17.``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.tasks.base import Example, Family, ProceduralTask, register_task
from cotdistill.tasks.words import person


@dataclass
class ArithParams:
    """Difficulty knobs shared by the arithmetic tasks."""

    min_steps: int = field(default=2, metadata={"help": "fewest operations per problem"})
    max_steps: int = field(default=3, metadata={"help": "most operations per problem"})
    max_number: int = field(default=9, metadata={"help": "largest operand (operands are 1..max_number)"})
    max_multiplier: int = field(default=3, metadata={"help": "largest factor of a later multiplication step"})
    multiply_prob: float = field(default=0.25, metadata={"help": "chance that a later step multiplies"})
    max_value: int = field(default=60, metadata={"help": "no multiplication once the running value exceeds this"})

    def __post_init__(self) -> None:
        if self.min_steps < 1:
            raise ValueError(f"min_steps must be >= 1, got {self.min_steps}")
        if self.max_steps < self.min_steps:
            raise ValueError(f"max_steps must be >= min_steps ({self.min_steps}), got {self.max_steps}")
        if self.max_number < 2:
            raise ValueError(f"max_number must be >= 2, got {self.max_number}")
        if self.max_multiplier < 2:
            raise ValueError(f"max_multiplier must be >= 2, got {self.max_multiplier}")
        if not 0.0 <= self.multiply_prob <= 1.0:
            raise ValueError(f"multiply_prob must be in [0, 1], got {self.multiply_prob}")
        if self.max_value < 1:
            raise ValueError(f"max_value must be >= 1, got {self.max_value}")


@dataclass(frozen=True)
class Step:
    """One operation: ``op`` is ``start`` (value ``a``), ``group`` (``a * b``), ``add``, ``sub`` or ``mul`` (by ``a``)."""

    op: str
    a: int
    b: int = 0


_SYMBOL = {"add": "+", "sub": "-", "mul": "*"}


def plan_steps(rng: random.Random, p: ArithParams) -> list[Step]:
    """A random operation plan with ``min_steps..max_steps`` operations and non-negative values."""
    n_ops = rng.randint(p.min_steps, p.max_steps)
    if rng.random() < 0.5:
        steps = [Step("group", rng.randint(2, p.max_number), rng.randint(2, p.max_number))]
        n_ops -= 1
    else:
        steps = [Step("start", rng.randint(2, p.max_number * 2))]
    extend_steps(rng, p, steps, n_ops)
    return steps


def extend_steps(rng: random.Random, p: ArithParams, steps: list[Step], n_ops: int) -> None:
    """Append ``n_ops`` random add/sub/mul steps, keeping every running value positive."""
    value = evaluate(steps)
    for _ in range(n_ops):
        if value <= p.max_value and rng.random() < p.multiply_prob:
            step = Step("mul", rng.randint(2, p.max_multiplier))
        elif value > 1 and rng.random() < 0.5:
            step = Step("sub", rng.randint(1, min(value - 1, p.max_number)))
        else:
            step = Step("add", rng.randint(1, p.max_number))
        steps.append(step)
        value = evaluate(steps)


def evaluate(steps: list[Step]) -> int:
    return run_steps(steps)[1]


def run_steps(steps: list[Step]) -> tuple[list[str], int]:
    """The rationale equations (one per operation) and the final value."""
    equations: list[str] = []
    value = 0
    for step in steps:
        if step.op == "start":
            value = step.a
        elif step.op == "group":
            value = step.a * step.b
            equations.append(f"{step.a} * {step.b} = {value}.")
        else:
            new = {"add": value + step.a, "sub": value - step.a, "mul": value * step.a}[step.op]
            equations.append(f"{value} {_SYMBOL[step.op]} {step.a} = {new}.")
            value = new
    return equations, value


def rationale(steps: list[Step]) -> tuple[str, int]:
    equations, value = run_steps(steps)
    return " ".join([*equations, answers.answer_sentence(str(value))]), value


@dataclass(frozen=True)
class Surface:
    """Vocabulary and sentence templates of one word-problem domain.

    Templates are ``str.format`` strings over ``name, he, him, his, item, unit, a, b, x, k``.
    """

    items: tuple[str, ...]
    units: tuple[str, ...]
    start: tuple[str, ...]
    group: tuple[str, ...]
    add: tuple[str, ...]
    sub: tuple[str, ...]
    mul: tuple[str, ...]
    question: tuple[str, ...]


class ArithmeticWordTask(ProceduralTask):
    """A multi-step word problem rendered with one ``Surface``."""

    family = Family.ARITHMETIC
    answer_type = AnswerType.NUMBER
    Params = ArithParams
    surface: ClassVar[Surface]

    def generate(self, rng: random.Random) -> Example:
        steps = plan_steps(rng, self.params)
        s = self.surface
        who = person(rng)
        slots = {
            "name": who.name,
            "he": who.subject,
            "him": who.object,
            "his": who.possessive,
            "item": rng.choice(s.items),
            "unit": rng.choice(s.units),
        }
        sentences = []
        used: set[str] = set()
        for step in steps:
            templates = {"start": s.start, "group": s.group, "add": s.add, "sub": s.sub, "mul": s.mul}[step.op]
            template = rng.choice([t for t in templates if t not in used] or templates)
            used.add(template)
            values = {"a": step.a, "b": step.b, "x": step.a, "k": step.a}
            sentences.append(_sentence(template.format(**slots, **values)))
        sentences.append(_sentence(rng.choice(s.question).format(**slots)))
        text, value = rationale(steps)
        return Example("", "", " ".join(sentences), str(value), text, {"steps": len(steps) - (steps[0].op == "start")})


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


@register_task("arith_shopping")
class ShoppingTask(ArithmeticWordTask):
    description = "multi-step word problems about buying and giving away goods"
    surface = Surface(
        items=(
            "apples",
            "pears",
            "pens",
            "notebooks",
            "candles",
            "cookies",
            "stickers",
            "oranges",
            "soaps",
            "cups",
            "marbles",
            "lemons",
        ),
        units=("bags", "boxes", "packs", "crates", "baskets"),
        start=("{name} has {a} {item}.", "{name} buys {a} {item} at the market.", "{name} puts {a} {item} in a cart."),
        group=(
            "{name} buys {a} {unit} of {item} with {b} in each.",
            "{name} buys {a} {unit} of {item}, each holding {b}.",
            "at the shop, {name} picks {a} {unit} with {b} {item} in every one.",
        ),
        add=(
            "{he} then buys {x} more.",
            "a friend gives {him} {x} more {item}.",
            "{he} finds {x} more {item} on sale.",
            "the cashier adds {x} free {item}.",
        ),
        sub=(
            "{he} returns {x} of them.",
            "{he} gives {x} {item} to a neighbour.",
            "{x} of the {item} are damaged and thrown away.",
            "{he} gives {x} away.",
        ),
        mul=(
            "{he} then buys enough to have {k} times as many.",
            "later {his} stock of {item} grows to {k} times that.",
        ),
        question=("How many {item} does {name} have now?", "How many {item} does {name} end up with?"),
    )


@register_task("arith_cooking")
class CookingTask(ArithmeticWordTask):
    description = "multi-step word problems about cooking and baking"
    surface = Surface(
        items=(
            "eggs",
            "carrots",
            "potatoes",
            "tomatoes",
            "muffins",
            "pancakes",
            "dumplings",
            "onions",
            "rolls",
            "tarts",
        ),
        units=("trays", "bowls", "batches", "pots", "plates"),
        start=(
            "{name} has {a} {item} in the kitchen.",
            "a recipe leaves {name} with {a} {item}.",
            "{name} starts with {a} {item} on the counter.",
        ),
        group=(
            "{name} makes {a} {unit} of {item} with {b} on each.",
            "{name} fills {a} {unit} with {b} {item} each.",
            "the chef {name} prepares {a} {unit} holding {b} {item} each.",
        ),
        add=("{he} cooks {x} more {item}.", "{he} adds {x} extra {item}.", "a helper brings {him} {x} more {item}."),
        sub=(
            "{he} burns {x} of them.",
            "{x} {item} fall on the floor.",
            "the guests eat {x} of the {item}.",
            "{he} gives {x} {item} to a neighbour.",
        ),
        mul=("{he} then scales the recipe up {k} times.", "for a party {he} makes {k} times as many."),
        question=("How many {item} does {name} have now?", "How many {item} are there at the end?"),
    )


@register_task("arith_travel")
class TravelTask(ArithmeticWordTask):
    description = "multi-step word problems about passengers joining and leaving a trip"
    surface = Surface(
        items=("passengers", "tourists", "travellers", "commuters", "students", "hikers"),
        units=("buses", "vans", "train cars", "boats", "minibuses"),
        start=(
            "{name} guides a group of {a} {item}.",
            "a tour led by {name} starts with {a} {item}.",
            "{name}'s ferry leaves with {a} {item} on board.",
        ),
        group=(
            "{name} books {a} {unit} with {b} {item} in each.",
            "{a} {unit} carry {b} {item} each on {name}'s tour.",
            "{name} fills {a} {unit}, each with {b} {item}.",
        ),
        add=(
            "at the next stop, {x} more {item} join.",
            "{x} {item} board at the harbour.",
            "{name} picks up {x} more {item} at the hotel.",
        ),
        sub=(
            "{x} {item} get off at the museum.",
            "at the station, {x} {item} leave the tour.",
            "{x} of the {item} stay behind at the beach.",
        ),
        mul=(
            "at the airport the group grows to {k} times its size.",
            "{name} merges groups so there are {k} times as many {item}.",
        ),
        question=("How many {item} are on the tour now?", "How many {item} does {name} have at the end?"),
    )


@register_task("arith_sport")
class SportTask(ArithmeticWordTask):
    description = "multi-step word problems about scores in games"
    surface = Surface(
        items=("points", "goals", "runs", "laps"),
        units=("games", "matches", "rounds", "quarters", "sets"),
        start=(
            "{name}'s team has {a} {item} after the first half.",
            "{name} scores {a} {item} in the opening game.",
            "{name} starts the season with {a} {item}.",
        ),
        group=(
            "{name} plays {a} {unit} and scores {b} {item} in each.",
            "{name} scores {b} {item} in each of {a} {unit}.",
            "over {a} {unit}, {name} earns {b} {item} every time.",
        ),
        add=(
            "in the next game {he} scores {x} more {item}.",
            "{he} adds {x} {item} in the final round.",
            "a late rally brings {him} {x} more {item}.",
        ),
        sub=(
            "a penalty takes away {x} {item}.",
            "the referee cancels {x} of {his} {item}.",
            "{he} loses {x} {item} for a foul.",
        ),
        mul=(
            "a bonus round multiplies {his} total by {k}.",
            "the championship bonus makes {his} total {k} times as big.",
        ),
        question=("How many {item} does {name} have now?", "What is {name}'s total of {item} at the end?"),
    )


_CHAIN_VERBS = {
    "add": ("add {x}", "plus {x}", "increase by {x}"),
    "sub": ("subtract {x}", "minus {x}", "take away {x}"),
    "mul": ("multiply by {x}", "times {x}"),
}
_CHAIN_TEMPLATES = (
    "Start with {start}, {ops}. What is the result?",
    "Take the number {start}, then {ops}. What number do you get?",
    "Begin at {start}; {ops}. What is the final value?",
)


@register_task("arith_chain")
class ChainTask(ProceduralTask):
    """A chain of operations on a start number (``Start with 7, add 5, multiply by 3.``)."""

    family = Family.ARITHMETIC
    answer_type = AnswerType.NUMBER
    description = "chained arithmetic: start with a number, apply + - * in order"

    @dataclass
    class Params(ArithParams):
        min_steps: int = field(default=2, metadata={"help": "fewest operations per chain"})
        max_steps: int = field(default=4, metadata={"help": "most operations per chain"})

    def generate(self, rng: random.Random) -> Example:
        p = self.params
        steps = [Step("start", rng.randint(1, p.max_number * 2))]
        extend_steps(rng, p, steps, rng.randint(p.min_steps, p.max_steps))
        ops = ", ".join(rng.choice(_CHAIN_VERBS[s.op]).format(x=s.a) for s in steps[1:])
        question = rng.choice(_CHAIN_TEMPLATES).format(start=steps[0].a, ops=ops)
        text, value = rationale(steps)
        return Example("", "", question, str(value), text, {"steps": len(steps) - 1})
