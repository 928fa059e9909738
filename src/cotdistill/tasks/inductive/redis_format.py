"""Read and write rule-induction tasks in the ReDis / Qiu et al. JSONL format.

One task per line: ``{"idx": 0, "train": [{"input": ..., "output": ...}], "test": [...]}``.
Inputs and outputs may be strings (``"[1, 2]"``, ``"on"``, ``"RED RED"``) or JSON values
(``[1, 2]``, ACRE's ``["red metal cube", ...]``); the domain's codec turns them into canonical
strings. ACRE's per-query ``type`` (direct, indirect, screen_off, potential) is kept on the pair;
whitespace is normalised. A bad line, or a line of another task family (an ACRE file read as
list functions), raises ``DataError`` naming the file and line, or is skipped and counted with
``skip_invalid``.

The ``<domain>_file`` tasks (``acre_file``, ``list_functions_file``, ``arc1d_file``,
``miniscan_file``) expose such a file to suites and recipes: one example per unseen query
(``meta``: ``task_idx``, ``query`` and the query's ``type`` when the file gives one). Splits are
cut by question hash, or ``split_files`` names a file per split (e.g. the paper's test file as
the whole test set). ``scoring: exact`` scores as the ReDis paper does: for list tasks the first
``[...]`` of the response must equal the gold output exactly, for ACRE and MiniSCAN the whole
response (stripped).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.io import read_records, write_jsonl
from cotdistill.tasks.base import Example, Family, register_task
from cotdistill.tasks.inductive.acre import LABELS as ACRE_LABELS
from cotdistill.tasks.inductive.base import Domain, Pair, RuleTask, format_question, get_domain
from cotdistill.tasks.loaders import FileParams, FileTask

_FIRST_LIST = re.compile(r"\[.*?\]")  # the paper's extract_list_substring


def parse_task(record: Any, domain: Domain, default_idx: str) -> RuleTask:
    """One JSON object -> RuleTask; raises KeyError/TypeError/ValueError on a malformed record."""
    if not isinstance(record, Mapping):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    idx = record.get("idx", default_idx)
    if isinstance(idx, bool) or not isinstance(idx, (int, str)):
        raise TypeError(f"'idx' must be an integer or a string, got {idx!r}")
    train = _pairs(record, "train", domain)
    test = _pairs(record, "test", domain)
    return RuleTask(str(idx), domain.name, train, test)


def _pairs(record: Mapping[str, Any], key: str, domain: Domain) -> tuple[Pair, ...]:
    items = record[key]
    if not isinstance(items, list) or not items:
        raise ValueError(f"'{key}' must be a non-empty list of {{input, output}} objects")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TypeError(f"'{key}[{i}]' must be an object, got {type(item).__name__}")
        kind = item.get("type")
        try:
            pair = Pair(
                domain.decode(item["input"]), domain.decode(item["output"]), kind if isinstance(kind, str) else None
            )
            domain.check_pair(pair)
        except KeyError as exc:
            raise KeyError(f"{key}[{i}].{exc.args[0]}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"'{key}[{i}]': {exc} (is this a file of another task family?)") from None
        pairs.append(pair)
    return tuple(pairs)


def load_rule_tasks(
    path: str | os.PathLike, domain: str | Domain, *, skip_invalid: bool = False, counter: dict[str, int] | None = None
) -> list[RuleTask]:
    """Every task of a ReDis-format file; a task without an ``idx`` gets ``task-<n>`` (its position)."""
    dom = get_domain(domain) if isinstance(domain, str) else domain
    position = itertools.count(1)
    return read_records(
        path, lambda obj: parse_task(obj, dom, f"task-{next(position)}"), skip_invalid=skip_invalid, counter=counter
    )


def task_to_dict(task: RuleTask, domain: str | Domain | None = None) -> dict[str, Any]:
    """The ReDis-format JSON object of a task (inputs encoded as the real files write them)."""
    dom = get_domain(domain or task.domain) if not isinstance(domain, Domain) else domain

    def pairs(items: Iterable[Pair]) -> list[dict[str, Any]]:
        return [
            {"input": dom.encode_input(p.input), "output": p.output, **({"type": p.type} if p.type else {})}
            for p in items
        ]

    idx: int | str = int(task.idx) if task.idx.isdigit() else task.idx
    return {"idx": idx, "train": pairs(task.train), "test": pairs(task.test)}


def write_rule_tasks(path: str | os.PathLike, tasks: Iterable[RuleTask]) -> int:
    """Atomically write tasks as ReDis-format JSONL; returns the number written."""
    return write_jsonl(path, (task_to_dict(t) for t in tasks))


@dataclass
class RuleFileParams(FileParams):
    path: str = field(default="", metadata={"help": "ReDis-format JSONL file (one task per line); split by hash"})
    max_seen: int = field(default=0, metadata={"help": "show at most this many seen pairs per question (0: all)"})
    scoring: Literal["answer", "exact"] = field(
        default="answer",
        metadata={"help": "answer: the answer sentence (strict) or last answer (flexible); exact: the ReDis paper's"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_seen < 0:
            raise ValueError(f"max_seen must be >= 0, got {self.max_seen}")


class RuleFileTask(FileTask):
    """Questions from a ReDis-format file: one example per unseen query (see the module docstring)."""

    has_rationale = False
    domain_name: ClassVar[str]
    Params = RuleFileParams

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        tasks = load_rule_tasks(path, self.domain_name, skip_invalid=self.params.skip_invalid, counter=counter)
        out = []
        for task in tasks:
            seen = task.train[: self.params.max_seen] if self.params.max_seen else task.train
            for q, pair in enumerate(task.test):
                meta = {"task_idx": task.idx, "query": q, **({"type": pair.type} if pair.type else {})}
                question = format_question(seen, pair.input)
                out.append(Example(f"{self.name}-{task.idx}-{q}", self.name, question, pair.output, None, meta))
        return out

    @staticmethod
    def identity(example: Example) -> str:
        """Every query of every task counts (as in the paper), even when two tasks repeat a question."""
        return example.id

    def score(self, prediction: str, example: Example) -> answers.Score:
        if self.params.scoring == "answer":
            return super().score(prediction, example)
        if self.answer_type == AnswerType.LIST:
            match = _FIRST_LIST.search(prediction)
            stated = match.group(0) if match else None
        else:
            stated = prediction.strip()
        correct = stated is not None and stated == example.answer
        return answers.Score(strict=correct, flexible=correct, extracted=stated, extracted_strict=stated)


@register_task("list_functions_file")
class ListFunctionsFile(RuleFileTask):
    family = Family.INDUCTIVE
    answer_type = AnswerType.LIST
    domain_name = "list_functions"
    description = "List Functions tasks read from a ReDis-format JSONL file"


@register_task("arc1d_file")
class Arc1DFile(RuleFileTask):
    family = Family.INDUCTIVE
    answer_type = AnswerType.LIST
    domain_name = "arc1d"
    description = "1D-ARC tasks read from a ReDis-format JSONL file"


@register_task("acre_file")
class AcreFile(RuleFileTask):
    family = Family.LOGICAL
    answer_type = AnswerType.LABEL
    labels = ACRE_LABELS
    domain_name = "acre"
    description = "ACRE tasks read from a ReDis-format JSONL file"


@register_task("miniscan_file")
class MiniScanFile(RuleFileTask):
    family = Family.INDUCTIVE
    answer_type = AnswerType.TEXT
    domain_name = "miniscan"
    description = "MiniSCAN tasks read from a ReDis-format JSONL file"
