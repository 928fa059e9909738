"""Loaders for data files users already have, and the file-backed tasks a suite can name.

Readers (each returns ``list[Example]``; malformed input raises ``DataError`` naming the file and
line, or with ``skip_invalid=True`` is skipped and counted in ``counter["skipped"]``):

* ``load_jsonl``: cotdistill's own JSONL (one ``Example`` record per line);
* ``load_gsm8k``: GSM8K JSONL (``question``, ``answer`` = rationale with ``<<...>>`` calculator
  annotations, then ``#### N``);
* ``load_bigbench``: a BIG-bench ``task.json`` (``examples[].input/target/target_scores``;
  ``target_scores`` become lettered choices A-E);
* ``load_hf``: a Hugging Face ``datasets`` name (needs the hub, or a local builder such as ``json``).

Extension point: a new file format is one ``FileTask`` subclass with ``read(path, counter)``
registered with ``@register_task("<format>")``; splits, seeded sampling, de-duplication and
skip counting come from ``FileTask``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cotdistill import answers
from cotdistill.errors import ConfigError, DataError
from cotdistill.io import read_records
from cotdistill.tasks.base import SPLITS, AnswerType, Example, Family, Task, question_hash, register_task, split_of

CHOICE_LETTERS = "ABCDE"


def _count(counter: dict[str, int] | None) -> None:
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


# --------------------------------------------------------------------------- BIG-bench


def parse_bigbench(record: Any, domain: str = "bigbench", mode: str = "auto") -> Example:
    """One BIG-bench example -> Example.

    ``mode="choice"`` (or ``auto`` when ``target_scores`` has 2-5 options) lists the options as
    ``A) ...`` lines and makes the best-scoring letter the answer; otherwise the answer is
    ``target`` (the first one when it is a list; all of them are kept in ``meta["targets"]``).
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    question = record["input"]
    if not isinstance(question, str) or not question.strip():
        raise TypeError("field 'input' must be a non-empty string")
    question = question.strip()
    scores = record.get("target_scores")
    use_choice = mode == "choice" or (mode == "auto" and isinstance(scores, Mapping) and 2 <= len(scores) <= 5)
    if use_choice:
        if not isinstance(scores, Mapping) or not 2 <= len(scores) <= len(CHOICE_LETTERS):
            raise ValueError(f"field 'target_scores' must map 2-{len(CHOICE_LETTERS)} options to scores")
        options = list(scores)
        if not all(isinstance(scores[o], (int, float)) and not isinstance(scores[o], bool) for o in options):
            raise TypeError("field 'target_scores' values must be numbers")
        best = max(range(len(options)), key=lambda i: scores[options[i]])
        lines = [f"{CHOICE_LETTERS[i]}) {option}" for i, option in enumerate(options)]
        text = question + "\n" + "\n".join(lines)
        meta = {"choices": options}
        return Example(f"{domain}-{question_hash(text)}", domain, text, CHOICE_LETTERS[best], None, meta)
    targets = record.get("target")
    if targets is None and isinstance(scores, Mapping) and scores:
        targets = max(scores, key=scores.get)
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise KeyError("target")
    return Example(
        f"{domain}-{question_hash(question)}", domain, question, targets[0].strip(), None, {"targets": targets}
    )


def load_bigbench(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    counter: dict[str, int] | None = None,
    domain: str = "bigbench",
    mode: str = "auto",
) -> list[Example]:
    """A BIG-bench ``task.json``; errors name the file, the line and ``examples[i]``."""
    path = Path(path)
    if not path.exists():
        raise DataError("file does not exist", path=str(path))
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError("file is empty", path=str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=exc.lineno) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("examples"), list):
        raise DataError("expected a JSON object with an 'examples' list (BIG-bench task.json)", path=str(path))
    records = data["examples"]
    lines = _element_lines(text, "examples", len(records))
    out = []
    for index, record in enumerate(records):
        try:
            out.append(parse_bigbench(record, domain, mode))
        except (KeyError, TypeError, ValueError) as exc:
            if not skip_invalid:
                reason = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
                raise DataError(f"examples[{index}]: {reason}", path=str(path), line=lines[index]) from None
            _count(counter)
    if not out:
        raise DataError("no valid examples (the list is empty or every example was skipped)", path=str(path))
    return out


def _element_lines(text: str, key: str, count: int) -> list[int | None]:
    """1-based line where each element of the top-level list ``key`` starts (None if not found)."""
    match = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[', text)
    if match is None:
        return [None] * count
    decoder = json.JSONDecoder()
    lines: list[int | None] = []
    position = match.end()
    while len(lines) < count:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            _, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return [None] * count
        lines.append(text.count("\n", 0, position) + 1)
        position = end
    return lines


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
            _count(counter)
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
    the records of ``path`` whose question hashes to ``split``; duplicates (same question) are
    dropped, the rest shuffled with ``seed`` and the first ``n`` returned (all of them when
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
        return sample_unique(pool, n, seed)


def sample_unique(pool: list[Example], n: int, seed: int) -> list[Example]:
    """Drop repeated questions (first kept), shuffle with ``seed``, take ``n`` (all when ``n < 0``)."""
    unique: dict[str, Example] = {}
    for example in pool:
        unique.setdefault(example.content_hash, example)
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


@register_task("bigbench")
class BigBenchTask(FileTask):
    """BIG-bench ``task.json``; multiple-choice examples are scored by letter, others as text."""

    family = Family.OTHER
    answer_type = AnswerType.CHOICE
    has_rationale = False
    description = "a BIG-bench task.json (target_scores become choices A-E, else target is the answer)"

    @dataclass
    class Params(FileParams):
        mode: Literal["auto", "choice", "text"] = field(
            default="auto",
            metadata={"help": "choice: letters from target_scores; text: target; auto: choice when possible"},
        )

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        examples = load_bigbench(
            path, skip_invalid=self.params.skip_invalid, counter=counter, domain=self.name, mode=self.params.mode
        )
        if not all("choices" in e.meta for e in examples):
            self.answer_type = AnswerType.TEXT
        return examples

    @property
    def answer_instruction(self) -> str:
        """Reads the file first: whether answers are letters or text depends on its examples."""
        self.records(self.params.path or next(iter(self.params.split_files.values())))
        return super().answer_instruction

    def score(self, prediction: str, example: Example) -> answers.Score:
        kind = AnswerType.CHOICE if "choices" in example.meta else AnswerType.TEXT
        return answers.score(prediction, example.answer, kind)


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
