"""What ``cotdistill generate`` reads: a question source plus a ``GenerateConfig``.

``questions`` is an examples JSONL file or a suite directory; without it, ``suite`` (a
``SuiteConfig``) is built into ``<output_dir>/suite``. Suite questions come from one ``split``
of the domains with the selected ``roles`` (default: labelled source domains only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cotdistill.distill.generate import GenerateConfig
from cotdistill.io import read_records
from cotdistill.tasks import Example, Task
from cotdistill.tasks.suite import Role, Suite, SuiteConfig, load_suite, make_suite


@dataclass
class GenerateRecipe:
    """What ``cotdistill generate`` reads: where the questions come from and how to sample."""

    questions: str = field(
        default="", metadata={"help": "an examples JSONL file or a suite directory (empty: build `suite`)"}
    )
    suite: SuiteConfig | None = field(default=None, metadata={"help": "a suite to build into <output_dir>/suite"})
    split: str = field(default="train", metadata={"help": "suite split to take questions from"})
    roles: list[Role] = field(
        default_factory=lambda: [Role.SOURCE],
        metadata={"help": "suite roles to take questions from (empty: every domain)"},
    )
    domains: list[str] = field(default_factory=list, metadata={"help": "only these domains (empty: all)"})
    limit: int = field(default=0, metadata={"help": "at most this many questions per domain (0: all)"})
    shots: str = field(
        default="", metadata={"help": "examples JSONL whose rationales serve as shots (default: the questions)"}
    )
    output_dir: str = field(default="runs/generate", metadata={"help": "where rationales.jsonl and stats.json go"})
    generate: GenerateConfig = field(default_factory=GenerateConfig, metadata={"help": "sampling and filtering"})

    def __post_init__(self) -> None:
        if self.split not in ("train", "dev", "test"):
            raise ValueError(f"split must be train, dev or test, got {self.split!r}")
        if self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")
        if not self.questions and self.suite is None:
            raise ValueError("give `questions` (examples JSONL or suite directory) or a `suite` config")


def suite_questions(
    suite: Suite, split: str, roles: Sequence[Role | str] = (Role.SOURCE,)
) -> tuple[list[Example], dict[str, Task]]:
    """The ``split`` questions of the suite's domains with one of ``roles`` (empty: every domain),
    and the task that scores each of those domains."""
    names = [d for d in suite.domains() if not roles or suite.roles[d] in roles]
    return [e for d in names for e in suite.examples(d, split)], {d: suite.task(d) for d in names}


def select_questions(
    recipe: GenerateRecipe, out_dir: Path
) -> tuple[list[Example], dict[str, Task] | None, dict[str, list[Example]] | None]:
    """The recipe's questions, the task scoring each suite domain (None for a JSONL file) and shot pools.

    A suite config (no ``questions``) is built into ``out_dir/suite`` first.
    """
    source = Path(recipe.questions) if recipe.questions else None
    tasks: dict[str, Task] | None = None
    if source is not None and source.is_file():
        examples = read_records(source, Example.from_dict)
    else:
        directory = source if source is not None else make_suite(recipe.suite, out_dir / "suite")
        examples, tasks = suite_questions(load_suite(directory), recipe.split, recipe.roles)
    if recipe.domains:
        examples = [e for e in examples if e.domain in recipe.domains]
    if recipe.limit:
        counts: dict[str, int] = {}
        limited = []
        for example in examples:
            counts[example.domain] = counts.get(example.domain, 0) + 1
            if counts[example.domain] <= recipe.limit:
                limited.append(example)
        examples = limited
    shots = None
    if recipe.shots:
        shots = {}
        for example in read_records(recipe.shots, Example.from_dict):
            shots.setdefault(example.domain, []).append(example)
    return examples, tasks, shots
