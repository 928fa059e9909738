"""Word pools shared by the procedural generators (names, pronouns)."""

from __future__ import annotations

import random
from typing import NamedTuple

FEMALE_NAMES = (
    "Ada",
    "Beth",
    "Cleo",
    "Dawn",
    "Eve",
    "Faith",
    "Grace",
    "Helen",
    "Iris",
    "Joy",
    "Kim",
    "Lily",
    "Mabel",
    "Nell",
    "Opal",
    "Pearl",
    "Ruth",
    "Sue",
    "Tess",
    "Uma",
    "Viv",
    "Wren",
    "Zoe",
    "Mia",
    "Lucy",
    "Emma",
    "Jill",
    "Kate",
)
MALE_NAMES = (
    "Adam",
    "Ben",
    "Carl",
    "Dan",
    "Eric",
    "Finn",
    "Gus",
    "Hugo",
    "Ivan",
    "Jack",
    "Karl",
    "Leo",
    "Max",
    "Nick",
    "Omar",
    "Paul",
    "Raj",
    "Sam",
    "Tom",
    "Umar",
    "Victor",
    "Will",
    "Yusuf",
    "Zack",
    "Luke",
    "Noah",
    "Owen",
    "Ravi",
)
NAMES = FEMALE_NAMES + MALE_NAMES


class Person(NamedTuple):
    name: str
    subject: str  # he / she
    object: str  # him / her
    possessive: str  # his / her


def person(rng: random.Random) -> Person:
    """A random person with matching pronouns, e.g. ``Person("Ada", "she", "her", "her")``."""
    if rng.random() < 0.5:
        return Person(rng.choice(FEMALE_NAMES), "she", "her", "her")
    return Person(rng.choice(MALE_NAMES), "he", "him", "his")


def distinct_names(rng: random.Random, k: int) -> list[str]:
    """``k`` different names (k <= len(NAMES))."""
    return rng.sample(NAMES, k)
