"""BIG-bench ``task.json`` files, prompted and scored the way BIG-bench does.

A task file has ``examples[]`` with ``input`` and ``target`` and/or ``target_scores``, and
optional ``task_prefix``, ``example_input_prefix``, ``example_output_prefix`` and
``few_shot_example_separator``. Each example becomes one question:

* ``target_scores`` with yes/no (or true/false) options -> a ``yesno`` question (no letters);
* other ``target_scores`` with 2-5 options -> lettered options ``A) ...``, the best-scoring
  letter is the answer, and stating an option's text scores like its letter;
* otherwise ``target`` is the answer (all targets kept in ``meta["targets"]``, any one scores);
  when every target is a Python list literal the answer type is ``list``.

A ``target`` next to ``target_scores`` that is not just an option is an explanation: it becomes
the gold rationale (followed by the answer sentence).

The question is ``task_prefix``, then ``shots`` solved examples (``input_prefix + input +
output_prefix + target``, joined by the separator), then ``input_prefix + input``. Prefixes are
the file's; a file that sets none gets BIG-bench's defaults (``Q: ``/``A: ``) only when shots
are shown. Shots come from the same task and split, drawn with a seed derived from the queried
example's id, never the queried example itself. Splits are assigned by a hash of the example's
own input (without shots), so a question's split never depends on its shots.

``params.path`` may be a directory: every ``task.json`` under it is one domain of a suite
(``<name>.<subdirectory>``, e.g. ``list_functions.c001``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cotdistill import answers
from cotdistill.answers import AnswerType
from cotdistill.errors import ConfigError, DataError
from cotdistill.io import require_file
from cotdistill.tasks.base import SPLITS, Example, Family, question_hash, register_task, split_of, stable_seed
from cotdistill.tasks.loaders import FileParams, FileTask, count_skipped, sample_unique

CHOICE_LETTERS = answers.CHOICE_LETTERS
TASK_FILE = "task.json"
_YES_NO_OPTIONS = ({"yes", "no"}, {"true", "false"})


@dataclass(frozen=True)
class Prompting:
    """A task file's prompt format (``task_prefix`` and the example prefixes)."""

    task_prefix: str = ""
    input_prefix: str | None = None
    output_prefix: str | None = None
    separator: str = "\n"

    def question(self, query: Example, shots: list[Example]) -> str:
        """The full question: task prefix, solved shots, then the query's input block."""
        input_prefix = self.input_prefix if self.input_prefix is not None else ("\nQ: " if shots else "")
        output_prefix = self.output_prefix if self.output_prefix is not None else "\nA: "
        solved = [f"{input_prefix}{s.meta['input_block']}{output_prefix}{s.meta['shot_answer']}" for s in shots]
        body = self.separator.join([*solved, f"{input_prefix}{query.meta['input_block']}"])
        return f"{self.task_prefix}{body}".strip()


def parse_bigbench(record: Any, domain: str = "bigbench", mode: str = "auto") -> Example:
    """One BIG-bench example -> Example (zero-shot, no prefixes); raises KeyError/TypeError/ValueError.

    ``meta``: ``input_block`` (input and option lines), ``shot_answer`` (what a solved shot
    shows), ``answer_type`` and ``choices`` (choice) or ``targets`` (text).
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    question = record["input"]
    if not isinstance(question, str) or not question.strip():
        raise TypeError("field 'input' must be a non-empty string")
    question = question.strip()
    scores = record.get("target_scores")
    explanation = record.get("target") if isinstance(record.get("target"), str) else None
    use_scores = mode == "choice" or (mode == "auto" and isinstance(scores, Mapping) and 2 <= len(scores) <= 5)
    if use_scores:
        options, best = _options(scores)
        if mode == "auto" and {o.strip().lower() for o in options} in _YES_NO_OPTIONS:
            return _make(domain, question, question, options[best], AnswerType.YESNO, explanation, {})
        block = question + "\n" + "\n".join(f"{CHOICE_LETTERS[i]}) {option}" for i, option in enumerate(options))
        return _make(
            domain, question, block, CHOICE_LETTERS[best], AnswerType.CHOICE, explanation, {"choices": options}
        )
    targets = record.get("target")
    if targets is None and isinstance(scores, Mapping) and scores:
        targets = max(scores, key=scores.get)
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise KeyError("target")
    kind = AnswerType.LIST if all(_is_list_literal(t) for t in targets) else AnswerType.TEXT
    return _make(domain, question, question, targets[0].strip(), kind, None, {"targets": targets})


def _options(scores: Any) -> tuple[list[str], int]:
    if not isinstance(scores, Mapping) or not 2 <= len(scores) <= len(CHOICE_LETTERS):
        raise ValueError(f"field 'target_scores' must map 2-{len(CHOICE_LETTERS)} options to scores")
    options = list(scores)
    if not all(isinstance(scores[o], (int, float)) and not isinstance(scores[o], bool) for o in options):
        raise TypeError("field 'target_scores' values must be numbers")
    return options, max(range(len(options)), key=lambda i: scores[options[i]])


def _make(
    domain: str, question: str, block: str, answer: str, kind: AnswerType, explanation: str | None, meta: dict
) -> Example:
    """An Example whose rationale is ``explanation`` when it says more than an option's text."""
    options = meta.get("choices", [answer] if kind == AnswerType.YESNO else [])
    said = explanation.strip() if explanation else ""
    is_explanation = bool(said) and answers.normalize_text(said) not in {answers.normalize_text(o) for o in options}
    rationale = f"{said} {answers.answer_sentence(answer)}" if is_explanation else None
    shot_answer = said if is_explanation and kind != AnswerType.CHOICE else answer
    meta = {**meta, "input_block": block, "shot_answer": shot_answer, "answer_type": kind.value}
    return Example(f"{domain}-{question_hash(block)}", domain, block, answer, rationale, meta)


def _is_list_literal(text: str) -> bool:
    try:
        return isinstance(ast.literal_eval(text.strip()), list)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def read_bigbench(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    counter: dict[str, int] | None = None,
    domain: str = "bigbench",
    mode: str = "auto",
) -> tuple[list[Example], Prompting]:
    """A ``task.json``'s examples (zero-shot) and its prompt format; errors name file, line and index."""
    path = require_file(path)
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError("file is empty", path=str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=exc.lineno) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("examples"), list):
        raise DataError("expected a JSON object with an 'examples' list (BIG-bench task.json)", path=str(path))
    prompting = _prompting(data, path)
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
            count_skipped(counter)
    if not out:
        raise DataError("no valid examples (the list is empty or every example was skipped)", path=str(path))
    return out, prompting


def load_bigbench(path: str | Path, **kwargs: Any) -> list[Example]:
    """The zero-shot examples of a ``task.json``, their questions with the file's prefixes."""
    examples, prompting = read_bigbench(path, **kwargs)
    return [dataclasses.replace(e, question=prompting.question(e, [])) for e in examples]


def _prompting(data: Mapping[str, Any], path: Path) -> Prompting:
    values = {}
    for key, name in (
        ("task_prefix", "task_prefix"),
        ("example_input_prefix", "input_prefix"),
        ("example_output_prefix", "output_prefix"),
        ("few_shot_example_separator", "separator"),
    ):
        if key in data:
            if not isinstance(data[key], str):
                raise DataError(f"field '{key}' must be a string", path=str(path))
            values[name] = data[key]
    return Prompting(**values)


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


@register_task("bigbench")
class BigBenchTask(FileTask):
    """A BIG-bench ``task.json`` (see the module docstring); answer type and rationales follow the file."""

    family = Family.OTHER
    answer_type = AnswerType.CHOICE
    has_rationale = False
    description = "a BIG-bench task.json (or a directory of them): prefixes, few-shot, choices, yes/no, lists"

    @dataclass
    class Params(FileParams):
        mode: Literal["auto", "choice", "text"] = field(
            default="auto",
            metadata={"help": "choice: letters from target_scores; text: target; auto: yes/no, choice or text"},
        )
        shots: int = field(
            default=0, metadata={"help": "solved examples from the same task and split shown before each question"}
        )

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.shots < 0:
                raise ValueError(f"shots must be >= 0, got {self.shots}")

    def __init__(self, params: Any = None):
        super().__init__(params)
        self._prompting: dict[str, Prompting] = {}

    @classmethod
    def domain_params(cls, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """``{suffix: params}``: one entry per ``task.json`` when ``path`` is a directory."""
        path = Path(str(params.get("path", "")))
        if not params.get("path") or not path.is_dir():
            return {"": dict(params)}
        files = sorted(path.rglob(TASK_FILE))
        if not files:
            raise ConfigError(f"{path}: directory holds no {TASK_FILE} (expected BIG-bench task directories)")
        return {".".join(f.parent.relative_to(path).parts): {**params, "path": str(f)} for f in files}

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        examples, self._prompting[path] = read_bigbench(
            path, skip_invalid=self.params.skip_invalid, counter=counter, domain=self.name, mode=self.params.mode
        )
        kinds = {e.meta["answer_type"] for e in examples}
        self.answer_type = AnswerType(kinds.pop()) if len(kinds) == 1 else AnswerType.TEXT
        self.has_rationale = all(e.rationale for e in examples)
        return examples

    def examples(self, split: str, n: int, seed: int) -> list[Example]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
        path = self.params.split_files.get(split) or self.params.path
        if not path:
            raise ConfigError(f"task '{self.name}': no file for split '{split}' (set params.path or split_files)")
        pool = self.records(path)
        if split not in self.params.split_files:
            pool = [e for e in pool if split_of(e.meta["input_block"]) == split]
        pool = sample_unique(pool, -1, 0)
        return [self._with_shots(e, pool, self._prompting[path]) for e in sample_unique(pool, n, seed)]

    def _with_shots(self, example: Example, pool: list[Example], prompting: Prompting) -> Example:
        others = [e for e in pool if e.id != example.id]
        rng = random.Random(stable_seed("shots", example.id))
        shots = rng.sample(others, min(self.params.shots, len(others)))
        return dataclasses.replace(example, question=prompting.question(example, shots))

    @property
    def answer_instruction(self) -> str:
        """Reads the file first unless the answer format was set (whether answers are letters depends on it)."""
        if "answer_type" not in vars(self):
            self.records(self.params.path or next(iter(self.params.split_files.values())))
        return super().answer_instruction

    def score(self, prediction: str, example: Example) -> answers.Score:
        kind = example.meta.get("answer_type") or ("choice" if "choices" in example.meta else "text")
        if kind != AnswerType.TEXT:
            return answers.score(prediction, example.answer, kind, options=example.meta.get("choices", ()))
        scores = [answers.score(prediction, target, kind) for target in example.meta.get("targets", [example.answer])]
        return answers.Score(
            strict=any(s.strict for s in scores),
            flexible=any(s.flexible for s in scores),
            extracted=scores[0].extracted,
            extracted_strict=scores[0].extracted_strict,
        )
