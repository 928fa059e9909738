"""Symbolic tasks from the chain-of-thought literature: last-letter concatenation and coin flip."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.tasks.base import Example, Family, ProceduralTask, register_task
from cotdistill.tasks.words import NAMES, distinct_names

_LAST_LETTER_TEMPLATES = (
    'Take the last letters of the words in "{words}" and concatenate them.',
    'Concatenate the last letter of each word in "{words}".',
    'What do you get by joining the last letters of the words in "{words}"?',
)
# Answers that text normalisation would erase (articles) cannot be scored, so they are redrawn.
_UNSCORABLE = {"a", "an", "the"}


@register_task("last_letter")
class LastLetterTask(ProceduralTask):
    """Join the last letters of N names; answer is the joined letters (lower case)."""

    family = Family.SYMBOLIC
    answer_type = AnswerType.TEXT
    description = "concatenate the last letters of N names"

    @dataclass
    class Params:
        min_words: int = field(default=2, metadata={"help": "fewest names per question"})
        max_words: int = field(default=3, metadata={"help": "most names per question"})

        def __post_init__(self) -> None:
            if self.min_words < 1:
                raise ValueError(f"min_words must be >= 1, got {self.min_words}")
            if self.max_words < self.min_words:
                raise ValueError(f"max_words must be >= min_words ({self.min_words}), got {self.max_words}")
            if self.max_words > len(NAMES):
                raise ValueError(f"max_words must be <= {len(NAMES)}, got {self.max_words}")

    def generate(self, rng: random.Random) -> Example:
        while True:
            words = distinct_names(rng, rng.randint(self.params.min_words, self.params.max_words))
            answer = "".join(w[-1].lower() for w in words)
            if answer not in _UNSCORABLE:
                break
        steps = [f'"{w}" ends in "{w[-1].lower()}".' for w in words]
        text = " ".join([*steps, f'Together: "{answer}".', answers.answer_sentence(answer)])
        question = rng.choice(_LAST_LETTER_TEMPLATES).format(words=" ".join(words))
        return Example("", "", question, answer, text, {"words": len(words)})


_FLIP = ("{name} flips the coin.", "{name} turns the coin over.")
_KEEP = ("{name} does not flip the coin.", "{name} leaves the coin alone.")


@register_task("coin_flip")
class CoinFlipTask(ProceduralTask):
    """A coin starts heads up; people flip it or not; is it still heads up? (yes/no)"""

    family = Family.SYMBOLIC
    answer_type = AnswerType.YESNO
    description = "track a coin through N people who flip it or not"

    @dataclass
    class Params:
        min_people: int = field(default=2, metadata={"help": "fewest people per question"})
        max_people: int = field(default=4, metadata={"help": "most people per question"})
        flip_prob: float = field(default=0.5, metadata={"help": "chance that each person flips the coin"})

        def __post_init__(self) -> None:
            if self.min_people < 1:
                raise ValueError(f"min_people must be >= 1, got {self.min_people}")
            if self.max_people < self.min_people:
                raise ValueError(f"max_people must be >= min_people ({self.min_people}), got {self.max_people}")
            if self.max_people > len(NAMES):
                raise ValueError(f"max_people must be <= {len(NAMES)}, got {self.max_people}")
            if not 0.0 <= self.flip_prob <= 1.0:
                raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")

    def generate(self, rng: random.Random) -> Example:
        people = distinct_names(rng, rng.randint(self.params.min_people, self.params.max_people))
        heads = True
        story = ["A coin is heads up."]
        steps = []
        for name in people:
            flips = rng.random() < self.params.flip_prob
            story.append(rng.choice(_FLIP if flips else _KEEP).format(name=name))
            heads ^= flips
            side = "heads" if heads else "tails"
            steps.append(f"{name} flips: {side}." if flips else f"{name} does not: {side}.")
        story.append("Is the coin still heads up?")
        answer = "yes" if heads else "no"
        text = " ".join([*steps, answers.answer_sentence(answer)])
        return Example("", "", " ".join(story), answer, text, {"people": len(people)})
