"""Loader for multi-hop QA files in the HotpotQA / 2WikiMultiHopQA format.

Accepts a JSON list or JSONL of records shaped like::

    {"_id": "...", "question": "...", "answer": "...", "type": "bridge",
     "context": [[title, [sentence, ...]], ...], "supporting_facts": [[title, sentence_index], ...]}

and the variants found in real files: ``id`` instead of ``_id``; the Hugging Face datasets
layout (``context: {"title": [...], "sentences": [[...]]}``, ``supporting_facts: {"title": [...],
"sent_id": [...]}``); 2WikiMultiHopQA's extra keys (``evidences``, ``entity_ids``) and types
(``compositional``, ``inference``, ``bridge_comparison``); unlabelled test files without
``answer``/``supporting_facts``. A malformed record raises DataError naming the file, the line
(JSONL) or the record index (JSON list), and the key; ``skip_invalid`` skips and counts them.

Registered as the ``hotpot`` task so a recipe can name a file (``params: {path: dev.json}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cotdistill.answers import AnswerType
from cotdistill.errors import DataError
from cotdistill.io import require_file
from cotdistill.tasks.base import Example, Family, question_hash, register_task
from cotdistill.tasks.loaders import FileTask


def parse_record(record: Any, domain: str = "hotpot") -> Example:
    """One HotpotQA/2Wiki record -> Example; raises KeyError/TypeError/ValueError when malformed."""
    if not isinstance(record, Mapping):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    question = _string(record, "question")
    answer = _string(record, "answer") if record.get("answer") is not None else ""
    context = _context(record.get("context", []))
    facts = _facts(record.get("supporting_facts") or [], {title for title, _ in context})
    raw_id = record.get("_id", record.get("id"))
    example_id = str(raw_id) if raw_id is not None else question_hash(question)
    kind = record.get("type") or "unknown"
    if not isinstance(kind, str):
        raise TypeError(f"key 'type' must be a string, got {type(kind).__name__}")
    meta = {"context": context, "supporting_facts": facts, "type": kind}
    if record.get("level"):
        meta["level"] = record["level"]
    return Example(id=f"{domain}-{example_id}", domain=domain, question=question, answer=answer, meta=meta)


def _string(record: Mapping[str, Any], key: str) -> str:
    if key not in record:
        raise KeyError(key)
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"key '{key}' must be a non-empty string, got {value!r}"[:200])
    return value.strip()


def _context(raw: Any) -> list[list[Any]]:
    if isinstance(raw, Mapping):  # datasets layout: {"title": [...], "sentences": [[...]]}
        titles, sentences = raw.get("title"), raw.get("sentences")
        if not isinstance(titles, list) or not isinstance(sentences, list) or len(titles) != len(sentences):
            raise ValueError("key 'context' must have equal-length 'title' and 'sentences' lists")
        raw = [[t, s] for t, s in zip(titles, sentences)]
    if not isinstance(raw, list):
        raise TypeError(f"key 'context' must be a list of [title, [sentences]], got {type(raw).__name__}")
    context = []
    for index, item in enumerate(raw):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"key 'context[{index}]' must be [title, [sentences]]")
        title, sentences = item
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise ValueError(f"key 'context[{index}]' sentences must be a list of strings")
        context.append([title, [s.strip() for s in sentences]])
    return context


def _facts(raw: Any, titles: set[str]) -> list[list[Any]]:
    if isinstance(raw, Mapping):  # datasets layout: {"title": [...], "sent_id": [...]}
        names, ids = raw.get("title"), raw.get("sent_id")
        if not isinstance(names, list) or not isinstance(ids, list) or len(names) != len(ids):
            raise ValueError("key 'supporting_facts' must have equal-length 'title' and 'sent_id' lists")
        raw = [[t, i] for t, i in zip(names, ids)]
    if not isinstance(raw, list):
        raise TypeError(f"key 'supporting_facts' must be a list of [title, index], got {type(raw).__name__}")
    facts = []
    for index, item in enumerate(raw):
        valid = isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
        if not valid or isinstance(item[1], bool) or not isinstance(item[1], int):
            raise ValueError(f"key 'supporting_facts[{index}]' must be [title, sentence_index]")
        if item[0] in titles:  # real files name a few titles that are not in the context: ignore those
            facts.append([item[0], item[1]])
    return facts


def load_multihop(
    path: str | Path, *, domain: str = "hotpot", skip_invalid: bool = False, counter: dict[str, int] | None = None
) -> list[Example]:
    """Read a JSON list or JSONL file of multi-hop records (see module docstring)."""
    path = require_file(path)
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg})", path=str(path), line=exc.lineno) from None
        located = [(None, f"record [{i}]", r) for i, r in enumerate(records)]
    else:
        located = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                located.append((number, "record", json.loads(line)))
            except json.JSONDecodeError as exc:
                if not skip_invalid:
                    raise DataError(
                        f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=number
                    ) from None
                _count(counter)
    examples = []
    for line, where, record in located:
        try:
            examples.append(parse_record(record, domain))
        except (KeyError, TypeError, ValueError) as exc:
            if not skip_invalid:
                reason = f"missing key {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
                raise DataError(f"{where}: {reason}", path=str(path), line=line) from None
            _count(counter)
    if not examples:
        raise DataError("no valid records (file is empty or every record was skipped)", path=str(path))
    return examples


def _count(counter: dict[str, int] | None) -> None:
    if counter is not None:
        counter["skipped"] = counter.get("skipped", 0) + 1


@register_task("hotpot")
class HotpotTask(FileTask):
    """HotpotQA / 2WikiMultiHopQA records; splits, sampling and skip counting come from ``FileTask``."""

    family = Family.MULTIHOP
    answer_type = AnswerType.TEXT
    has_rationale = False
    description = "multi-hop QA read from a HotpotQA / 2WikiMultiHopQA JSON or JSONL file"

    def read(self, path: str, counter: dict[str, int]) -> list[Example]:
        return load_multihop(path, domain=self.name, skip_invalid=self.params.skip_invalid, counter=counter)
