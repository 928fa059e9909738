"""Procedural multi-hop QA in the HotpotQA format (fictional world, offline).

Every example builds a small fictional world (people, cities, countries, films, companies),
writes one paragraph per entity, and asks a two-hop question:

* **bridge**: "In which city was the director of the film X born?" needs the film's paragraph
  (director) and the director's paragraph (birthplace);
* **comparison**: "Who was born first, A or B?" needs both people's paragraphs.

Gold paragraphs are mixed with distractor paragraphs about other entities. ``meta`` carries
``context`` (list of ``[title, [sentences]]``), ``supporting_facts`` (``[[title, sentence_index]]``)
and ``type`` (``bridge`` | ``comparison``), exactly as in HotpotQA; the gold rationale states the
supporting facts and ends with ``answers.answer_sentence``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cotdistill.answers import AnswerType, answer_sentence
from cotdistill.tasks.base import Example, Family, ProceduralTask, register_task

_ONSETS = ("b", "br", "d", "dr", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "th", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "n", "r", "l", "s", "m", "th", "k")
_PROFESSIONS = ("painter", "engineer", "novelist", "chemist", "architect", "composer", "sculptor", "botanist")
_GENRES = ("drama", "comedy", "thriller", "documentary", "western", "musical")
_INDUSTRIES = ("shipping", "textile", "software", "brewing", "mining", "publishing")


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)]
    return "".join(parts).capitalize()


@dataclass
class _World:
    """Fictional entities with unique names; each paragraph is ``(title, sentences)``."""

    rng: random.Random
    used: set[str] = field(default_factory=set)

    def name(self, syllables: int) -> str:
        while True:
            candidate = _word(self.rng, syllables)
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate

    def person(self) -> dict[str, Any]:
        return {
            "name": f"{self.name(2)} {self.name(2)}",
            "city": self.name(3),
            "year": self.rng.randint(1850, 1990),
            "job": self.rng.choice(_PROFESSIONS),
        }

    def film(self, director: str) -> dict[str, Any]:
        return {
            "name": f"The {self.name(2)} {self.name(2)}",
            "director": director,
            "year": self.rng.randint(1920, 2020),
            "genre": self.rng.choice(_GENRES),
        }

    def company(self, founder: str) -> dict[str, Any]:
        return {
            "name": f"{self.name(2)} {self.rng.choice(('Works', 'Group', 'Holdings', 'Company'))}",
            "founder": founder,
            "city": self.name(3),
            "industry": self.rng.choice(_INDUSTRIES),
        }


def person_paragraph(p: dict[str, Any]) -> tuple[str, list[str]]:
    """Sentence 0: profession; 1: birth year; 2: birthplace."""
    return p["name"], [
        f"{p['name']} is {_a(p['job'])}.",
        f"{p['name']} was born in {p['year']}.",
        f"{p['name']} was born in the city of {p['city']}.",
    ]


def film_paragraph(f: dict[str, Any]) -> tuple[str, list[str]]:
    """Sentence 0: genre and year; 1: director."""
    return f["name"], [
        f"{f['name']} is a {f['year']} {f['genre']} film.",
        f"{f['name']} was directed by {f['director']}.",
    ]


def company_paragraph(c: dict[str, Any]) -> tuple[str, list[str]]:
    """Sentence 0: industry and founder; 1: headquarters."""
    return c["name"], [
        f"{c['name']} is {_a(c['industry'])} company founded by {c['founder']}.",
        f"{c['name']} is headquartered in {c['city']}.",
    ]


Question = tuple[str, str, list[tuple[str, list[str]]], list[tuple[str, int]], str]
"""(question, answer, gold paragraphs, supporting facts, rationale)."""


def _bridge_film(world: _World) -> Question:
    person = world.person()
    film = world.film(person["name"])
    question = f"In which city was the director of {film['name']} born?"
    rationale = (
        f"{film['name']} was directed by {person['name']}. {person['name']} was born in the city of "
        f"{person['city']}. {answer_sentence(person['city'])}"
    )
    paragraphs = [film_paragraph(film), person_paragraph(person)]
    return question, person["city"], paragraphs, [(film["name"], 1), (person["name"], 2)], rationale


def _bridge_company(world: _World) -> Question:
    person = world.person()
    company = world.company(person["name"])
    question = f"In what year was the founder of {company['name']} born?"
    rationale = (
        f"{company['name']} was founded by {person['name']}. {person['name']} was born in {person['year']}. "
        f"{answer_sentence(str(person['year']))}"
    )
    paragraphs = [company_paragraph(company), person_paragraph(person)]
    return question, str(person["year"]), paragraphs, [(company["name"], 0), (person["name"], 1)], rationale


def _compare_birth(world: _World) -> Question:
    a, b = world.person(), world.person()
    while a["year"] == b["year"]:
        b["year"] = world.rng.randint(1850, 1990)
    first = a if a["year"] < b["year"] else b
    question = f"Who was born first, {a['name']} or {b['name']}?"
    rationale = (
        f"{a['name']} was born in {a['year']}. {b['name']} was born in {b['year']}. "
        f"{first['name']} was born first. {answer_sentence(first['name'])}"
    )
    paragraphs = [person_paragraph(a), person_paragraph(b)]
    return question, first["name"], paragraphs, [(a["name"], 1), (b["name"], 1)], rationale


def _compare_film(world: _World) -> Question:
    x, y = world.film(world.person()["name"]), world.film(world.person()["name"])
    while x["year"] == y["year"]:
        y["year"] = world.rng.randint(1920, 2020)
    earlier = x if x["year"] < y["year"] else y
    question = f"Which film came out earlier, {x['name']} or {y['name']}?"
    rationale = (
        f"{x['name']} is a {x['year']} film. {y['name']} is a {y['year']} film. "
        f"{earlier['name']} came out earlier. {answer_sentence(earlier['name'])}"
    )
    paragraphs = [film_paragraph(x), film_paragraph(y)]
    return question, earlier["name"], paragraphs, [(x["name"], 0), (y["name"], 0)], rationale


BRIDGE: tuple[Callable[[_World], Question], ...] = (_bridge_film, _bridge_company)
COMPARISON: tuple[Callable[[_World], Question], ...] = (_compare_birth, _compare_film)


def _distractor(world: _World) -> tuple[str, list[str]]:
    kind = world.rng.randrange(3)
    person = world.person()
    if kind == 0:
        return person_paragraph(person)
    if kind == 1:
        return film_paragraph(world.film(person["name"]))
    return company_paragraph(world.company(person["name"]))


def render_context(context: Sequence[Sequence[Any]]) -> str:
    """``[[title, [sentences]]]`` -> one paragraph per line: ``Title: s0 s1 ...``."""
    return "\n".join(f"{title}: {' '.join(sentences)}" for title, sentences in context)


def supporting_sentences(context: Sequence[Sequence[Any]], supporting_facts: Sequence[Sequence[Any]]) -> list[str]:
    """The sentences named by ``[[title, index]]`` supporting facts (missing ones are skipped)."""
    by_title = {title: sentences for title, sentences in context}
    out = []
    for title, index in supporting_facts:
        sentences = by_title.get(title, [])
        if 0 <= index < len(sentences):
            out.append(sentences[index])
    return out


@register_task("multihop")
class MultiHop(ProceduralTask):
    family = Family.MULTIHOP
    answer_type = AnswerType.TEXT
    description = "two-hop bridge and comparison questions over fictional paragraphs with distractors (HotpotQA format)"

    @dataclass
    class Params:
        distractors: int = field(default=2, metadata={"help": "distractor paragraphs mixed with the 2 gold ones"})
        comparison_ratio: float = field(default=0.5, metadata={"help": "fraction of comparison (vs bridge) questions"})

        def __post_init__(self) -> None:
            if not 0 <= self.distractors <= 20:
                raise ValueError(f"distractors must be in [0, 20], got {self.distractors}")
            if not 0.0 <= self.comparison_ratio <= 1.0:
                raise ValueError(f"comparison_ratio must be in [0, 1], got {self.comparison_ratio}")

    def generate(self, rng: random.Random) -> Example:
        world = _World(rng)
        kind = "comparison" if rng.random() < self.params.comparison_ratio else "bridge"
        make = rng.choice(COMPARISON if kind == "comparison" else BRIDGE)
        question, answer, gold, facts, rationale = make(world)
        paragraphs = gold + [_distractor(world) for _ in range(self.params.distractors)]
        rng.shuffle(paragraphs)
        meta = {
            "context": [[title, list(sentences)] for title, sentences in paragraphs],
            "supporting_facts": [[title, index] for title, index in facts],
            "type": kind,
        }
        return Example(id="", domain="", question=question, answer=answer, rationale=rationale, meta=meta)
