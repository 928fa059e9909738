"""Loaders for data files users already have, and the file-backed tasks a suite can name.

Readers (each returns ``list[Example]``; malformed input raises ``DataError`` naming the file and
line, or with ``skip_invalid=True`` is skipped and counted in ``counter["skipped"]``):

* ``load_jsonl``: cotdistill's own JSONL (one ``Example`` record per line);
* ``load_gsm8k``: GSM8K JSONL (``question``, ``answer`` = rationale with ``<<...>>`` calculator
  annotations, then ``#### N``);
* ``load_bigbench`` (``cotdistill.tasks.bigbench``): a BIG-bench ``task.json``;
* ``load_hf``: a Hugging Face ``datasets`` name (needs the hub, or a local builder such as ``json``).

Extension point: a new file format is one ``FileTask`` subclass with ``read(path, counter)``
registered with ``@register_task("<format>")``; splits, seeded sampling, de-duplication and
skip counting come from ``FileTask``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.errors import ConfigError, DataError
from cotdistill.io import read_records
from cotdistill.tasks.base import SPLITS, Example, Family, Task, question_hash, register_task, split_of


def count_skipped(counter: dict[str, int] | None) -> None:
    """Count one skipped malformed record in ``counter["skipped"]``."""
    if counter is not None:
        counter["skipped"] = counter.get("skipped", 0) + 1


# --------------------------------------------------------------------------- our JSONL


def load_jsonl(path: str | Path, *, skip_invalid: bool = False, counter: dict[str, int] | None = None) -> list[Example]:
    """cotdistill ``Example`` records, one JSON object per line."""
    return read_records(path, Example.from_dict, skip_invalid=skip_invalid, counter=counter)


# --------------------------------------------------------------------------- GSM8K

_CALCULATOR = re.compile(r"<<[^<>]*>>")


def parse_gsm8k(record: Any, domain: str = "gsm8k") -> Example:
    """One GSM8K record -> Example with the cleaned rationale; raises KeyError/TypeError/ValueError."""
    if not isinstance(record, Mapping):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    question, solution = record["question"], record["answer"]
    if not isinstance(question, str) or not question.strip():
        raise TypeError("field 'question' must be a non-empty string")
    if not isinstance(solution, str):
        raise TypeError(f"field 'answer' must be a string, got {type(solution).__name__}")
    if "####" not in solution:
        raise ValueError("field 'answer' has no '#### <answer>' line")
    steps, final = solution.rsplit("####", 1)
    answer = final.strip().replace(",", "")
    if not answer:
        raise ValueError("field 'answer' has nothing after '####'")
    lines = [line.strip() for line in _CALCULATOR.sub("", steps).splitlines() if line.strip()]
    rationale = " ".join([*lines, answers.answer_sentence(answer)])
    question = question.strip()
    return Example(f"{domain}-{question_hash(question)}", domain, question, answer, rationale)


def load_gsm8k(
    path: str | Path, *, skip_invalid: bool = False, counter: dict[str, int] | None = None, domain: str = "gsm8k"
) -> list[Example]:
    """A GSM8K-format JSONL file (``question``, ``answer`` ending in ``#### N``)."""
    return read_records(path, lambda r: parse_gsm8k(r, domain), skip_invalid=skip_invalid, counter=counter)


# --------------------------------------------------------------------------- HF datasets


def load_hf(
    name: str,
    *,
    split: str,
    config: str | None = None,
    data_files: str | list[str] | None = None,
    question_field: str = "question",
    answer_field: str = "answer",
    rationale_field: str | None = None,
    answer_format: str = "plain",
    domain: str = "hf",
    skip_invalid: bool = False,
    counter: dict[str, int] | None = None,
) -> list[Example]:
    """Rows of a ``datasets`` dataset as Examples (``answer_format="gsm8k"`` parses ``#### N`` answers).

    The hub must be reachable for hub names; ``name="json"`` with ``data_files`` works offline.
    """
    import datasets

    where = f"datasets:{name}" + (f"/{config}" if config else "") + f"[{split}]"
    try:
        rows = datasets.load_dataset(name, config, split=split, data_files=data_files)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for "not reachable"/"not found"
        reason = str(exc).splitlines()[0] if str(exc) else ""
        hint = ""
        if any(word in reason.lower() for word in ("hub", "connect", "offline", "reach", "resolve")):
            hint = (
                "; hub names need network access to huggingface.co (or a local cache); "
                "files already on disk load with the jsonl/gsm8k/bigbench tasks"
            )
        elif "split" in reason.lower():
            hint = "; map our splits to the dataset's with params.split_names"
        raise DataError(f"could not load the dataset ({type(exc).__name__}: {reason}){hint}", path=where) from None
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(_hf_row(row, question_field, answer_field, rationale_field, answer_format, domain))
        except (KeyError, TypeError, ValueError) as exc:
            if not skip_invalid:
                reason = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
                raise DataError(f"row {index}: {reason}", path=where) from None
            count_skipped(counter)
    if not out:
        raise DataError("no valid rows", path=where)
    return out


def _hf_row(
    row: Mapping[str, Any],
    question_field: str,
    answer_field: str,
    rationale_field: str | None,
    answer_format: str,
    domain: str,
) -> Example:
    if answer_format == "gsm8k":
        return parse_gsm8k({"question": row[question_field], "answer": row[answer_field]}, domain)
    question, answer = row[question_field], row[answer_field]
    if not isinstance(question, str) or not question.strip():
        raise TypeError(f"field '{question_field}' must be a non-empty string")
    rationale = row[rationale_field] if rationale_field else None
    if rationale is not None and not isinstance(rationale, str):
        raise TypeError(f"field '{rationale_field}' must be a string")
    answer = str(answer).strip()
    if rationale is not None:
        rationale = f"{rationale.strip()} {answers.answer_sentence(answer)}"
    question = question.strip()
    return Example(f"{domain}-{question_hash(question)}", domain, question, answer, rationale)


# --------------------------------------------------------------------------- file-backed tasks


@dataclass
class FileParams:
    """Where a file-backed task reads its examples (shared by every format)."""

    path: str = field(default="", metadata={"help": "the data file; splits are assigned by question hash"})
    split_files: dict[str, str] = field(
        default_factory=dict, metadata={"help": "optional file per split (train/dev/test), used instead of `path`"}
    )
    skip_invalid: bool = field(default=False, metadata={"help": "skip malformed records (counted) instead of failing"})

    def __post_init__(self) -> None:
        if not self.path and not self.split_files:
            raise ValueError("path (or split_files) is required")
        unknown = sorted(set(self.split_files) - set(SPLITS))
        if unknown:
            raise ValueError(f"split_files keys must be among {', '.join(SPLITS)}, got {unknown}")


class FileTask(Task):
    """A task whose examples come from a file: ``read(path, counter)`` parses it.

    ``examples(split, n, seed)`` takes the split's file when ``split_files`` names one, otherwise
    the records of ``path`` whose question hashes to ``split``; duplicates (same ``identity``,
    by default the question) are dropped, the rest shuffled with ``seed`` and the first ``n`` returned (all of them when
    ``n < 0``). ``skipped`` counts malformed records skipped so far.
    """

    source = "file"
    Params = FileParams

    def __init__(self, params: Any = None):
        super().__init__(params)
        self.skipped = 0
        self._cache: dict[str, list[Example]] = {}

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        raise NotImplementedError

    def records(self, path: str) -> list[Example]:
        """Every record of ``path`` (read once per task instance)."""
        if path not in self._cache:
            counter: dict[str, int] = {}
            self._cache[path] = self.read(path, counter)
            self.skipped += counter.get("skipped", 0)
        return self._cache[path]

    def examples(self, split: str, n: int, seed: int) -> list[Example]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
        if split in self.params.split_files:
            pool = self.records(self.params.split_files[split])
        elif self.params.path:
            pool = [e for e in self.records(self.params.path) if split_of(e.question) == split]
        else:
            raise ConfigError(f"task '{self.name}': no file for split '{split}' (set params.path or split_files)")
        return sample_unique(pool, n, seed, key=self.identity)

    @staticmethod
    def identity(example: Example) -> str:
        """What makes two records the same example (only the first is kept): the question text."""
        return example.content_hash


def sample_unique(
    pool: list[Example], n: int, seed: int, key: Callable[[Example], str] = lambda e: e.content_hash
) -> list[Example]:
    """Drop repeated examples (same ``key``, first kept), shuffle with ``seed``, take ``n`` (all when ``n < 0``)."""
    unique: dict[str, Example] = {}
    for example in pool:
        unique.setdefault(key(example), example)
    chosen = list(unique.values())
    random.Random(seed).shuffle(chosen)
    return chosen if n < 0 else chosen[:n]


@register_task("jsonl")
class JsonlTask(FileTask):
    """cotdistill JSONL records; the answer type is a parameter (the records do not say)."""

    family = Family.OTHER
    description = "cotdistill Example records read from a JSONL file"

    @dataclass
    class Params(FileParams):
        answer_type: AnswerType = field(
            default=AnswerType.TEXT, metadata={"help": "number | choice | yesno | list | label | text"}
        )
        labels: list[str] = field(default_factory=list, metadata={"help": "the closed answer set (answer_type: label)"})

    def __init__(self, params: Any = None):
        super().__init__(params)
        self.answer_type = self.params.answer_type
        self.labels = tuple(self.params.labels)

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        return load_jsonl(path, skip_invalid=self.params.skip_invalid, counter=counter)


@register_task("gsm8k")
class Gsm8kTask(FileTask):
    family = Family.ARITHMETIC
    answer_type = AnswerType.NUMBER
    description = "GSM8K-format JSONL (question, answer with '#### N'); rationales from the solutions"

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        return load_gsm8k(path, skip_invalid=self.params.skip_invalid, counter=counter, domain=self.name)


@register_task("hf")
class HfTask(FileTask):
    """A Hugging Face ``datasets`` dataset; ``path`` is the dataset name, splits map to its splits."""

    family = Family.OTHER
    source = "hf-datasets"
    description = "a Hugging Face datasets name (needs the hub) or a local builder like json"

    @dataclass
    class Params:
        path: str = field(default="", metadata={"help": "dataset name, e.g. openai/gsm8k, or a builder like json"})
        config: str | None = field(default=None, metadata={"help": "dataset config name (e.g. main)"})
        data_files: list[str] = field(default_factory=list, metadata={"help": "local files for builders like json"})
        split_names: dict[str, str] = field(
            default_factory=lambda: {"train": "train", "test": "test"},
            metadata={"help": "our split -> the dataset's split; splits missing here are cut from 'train' by hash"},
        )
        question_field: str = field(default="question", metadata={"help": "column holding the question"})
        answer_field: str = field(default="answer", metadata={"help": "column holding the answer"})
        rationale_field: str | None = field(default=None, metadata={"help": "column holding a rationale, if any"})
        answer_format: Literal["plain", "gsm8k"] = field(
            default="plain", metadata={"help": "gsm8k: the answer column is a solution ending in '#### N'"}
        )
        answer_type: AnswerType = field(
            default=AnswerType.TEXT, metadata={"help": "number | choice | yesno | list | label | text"}
        )
        skip_invalid: bool = field(default=False, metadata={"help": "skip malformed rows (counted) instead of failing"})

        def __post_init__(self) -> None:
            if not self.path:
                raise ValueError("path (the dataset name) is required")
            unknown = sorted(set(self.split_names) - set(SPLITS))
            if unknown:
                raise ValueError(f"split_names keys must be among {', '.join(SPLITS)}, got {unknown}")

    def __init__(self, params: Any = None):
        super().__init__(params)
        self.answer_type = self.params.answer_type
        self.has_rationale = self.params.rationale_field is not None or self.params.answer_format == "gsm8k"

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        p = self.params
        return load_hf(
            p.path,
            split=path,
            config=p.config,
            data_files=p.data_files or None,
            question_field=p.question_field,
            answer_field=p.answer_field,
            rationale_field=p.rationale_field,
            answer_format=p.answer_format,
            domain=self.name,
            skip_invalid=p.skip_invalid,
            counter=counter,
        )

    def examples(self, split: str, n: int, seed: int) -> list[Example]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
        names = self.params.split_names
        carved = {s for s in SPLITS if s not in names}
        if split in carved:
            pool = [e for e in self.records("train") if split_of(e.question) == split]
        else:
            pool = self.records(names[split])
            if names[split] == "train":
                pool = [e for e in pool if split_of(e.question) not in carved]
        return sample_unique(pool, n, seed)
