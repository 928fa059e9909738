"""The append-only rationale store (``rationales.jsonl``), one line per teacher sample.

Records are keyed by ``(example_id, sample_index)`` and appends are flushed and fsynced (each one,
or once per teacher batch inside ``store.batch()``), so a killed run restarted with the same command skips what is on disk and adds only what is
missing. A key gets a second record only to supersede a failed one (``error`` set), to give a
``pending`` sample its final verdict, or to revise a verdict (``revise``); readers return the
latest record per key. A torn last line (a crash mid-write) is ignored by readers and cut off
when the store is reopened for writing. A file holding two final records for one key (two
writers at once) is repaired on open: the latest record wins and the
file is rewritten with one record per key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.errors import DataError
from cotdistill.io import JsonlAppender, iter_text_lines, write_jsonl
from cotdistill.tasks.base import Example

log = logging.getLogger(__name__)

Key = tuple[str, int]
STORE_NAME = "rationales.jsonl"


@dataclass(frozen=True)
class RationaleRecord:
    """One teacher sample for one question, with its filtering verdict and provenance.

    ``correct`` is None when the question has no gold answer; ``prediction`` is the answer
    extracted from ``rationale`` (None when none was found or the request failed, in which
    case ``error`` says why). ``usage`` is the token usage of the request that produced the
    sample, shared by ``usage["shared_by"]`` samples. ``pending``: the verdict waits for the
    question's other samples (a self-consistency vote or dedupe needs all of them); a pending
    sample is not kept.
    """

    example_id: str
    domain: str
    question: str
    gold: str
    sample_index: int
    rationale: str
    prediction: str | None
    correct: bool | None
    kept: bool
    reason: str
    teacher: str
    prompt_hash: str
    sampling: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0
    rationalized: bool = False
    error: str | None = None
    pending: bool = False

    @property
    def key(self) -> Key:
        return (self.example_id, self.sample_index)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RationaleRecord:
        """Parse a JSON object; raises KeyError/TypeError/ValueError on a malformed record."""
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        for key in ("example_id", "domain", "question", "gold", "rationale", "reason", "teacher", "prompt_hash"):
            if key not in data:
                raise KeyError(key)
            if not isinstance(data[key], str):
                raise TypeError(f"field '{key}' must be a string, got {type(data[key]).__name__}")
        for key in ("sample_index", "kept"):
            if key not in data:
                raise KeyError(key)
        if not isinstance(data.get("pending", False), bool):
            raise TypeError("field 'pending' must be true or false")
        if not isinstance(data["sample_index"], int) or data["sample_index"] < 0:
            raise ValueError(f"field 'sample_index' must be a non-negative integer, got {data['sample_index']!r}")
        if not isinstance(data["kept"], bool):
            raise TypeError("field 'kept' must be true or false")
        return cls(**{k: data[k] for k in names if k in data})

    def to_example(self) -> Example:
        """This sample as a training ``Example`` (id ``<example_id>#<sample_index>``).

        The answer is the gold one, or, for unlabelled questions kept by vote, the teacher's.
        """
        return Example(
            id=f"{self.example_id}#{self.sample_index}",
            domain=self.domain,
            question=self.question,
            answer=self.gold or (self.prediction or ""),
            rationale=self.rationale,
            meta={
                "example_id": self.example_id,
                "sample_index": self.sample_index,
                "teacher": self.teacher,
                "reason": self.reason,
                "rationalized": self.rationalized,
            },
        )


def iter_records(path: str | os.PathLike) -> Iterator[RationaleRecord]:
    """Yield the records of a store file in order; a malformed line raises DataError(file:line)."""
    path = Path(path)
    if not path.exists():
        raise DataError("rationale file does not exist", path=str(path))
    lines = [line for _, line in iter_text_lines(path)]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        torn = number == len(lines) and not line.endswith("\n")
        try:
            yield RationaleRecord.from_dict(json.loads(line))
        except json.JSONDecodeError as exc:
            if torn:
                return
            raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=number) from None
        except KeyError as exc:
            raise DataError(f"missing field {exc.args[0]!r}", path=str(path), line=number) from None
        except (TypeError, ValueError) as exc:
            raise DataError(str(exc), path=str(path), line=number) from None


def load_records(path: str | os.PathLike) -> list[RationaleRecord]:
    """The current record of every key in a store file (kept and filtered), in first-seen order."""
    latest: dict[Key, RationaleRecord] = {}
    for record in iter_records(path):
        latest[record.key] = record
    return list(latest.values())


def load_kept(path: str | os.PathLike) -> list[Example]:
    """The kept samples of a store file as Examples whose ``rationale`` is the teacher's.

    ``path`` may be the ``rationales.jsonl`` file or the directory holding it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STORE_NAME
    return [record.to_example() for record in load_records(path) if record.kept]


class RationaleStore:
    """Append-only, crash-safe store of ``RationaleRecord``s keyed by (example_id, sample_index)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._appender = JsonlAppender(self.path)  # cuts a torn last line before we read
        self._records: dict[Key, RationaleRecord] = {}
        self._by_example: dict[str, dict[int, RationaleRecord]] = {}
        duplicates = 0
        for record in iter_records(self.path):
            duplicates += not self.can_write(record.key)
            self._index(record)
        if duplicates:
            self._rewrite(duplicates)

    def _index(self, record: RationaleRecord) -> None:
        self._records[record.key] = record
        self._by_example.setdefault(record.example_id, {})[record.sample_index] = record

    def _rewrite(self, duplicates: int) -> None:
        """Repair a store with repeated final records: keep the latest record of every key."""
        log.warning(
            "%s: %d sample(s) were stored twice (two runs at once?); keeping the latest record of each",
            self.path,
            duplicates,
        )
        self._appender.close()
        write_jsonl(self.path, (record.to_dict() for record in self._records.values()))
        self._appender = JsonlAppender(self.path)

    def can_write(self, key: Key) -> bool:
        """True when ``key`` has no record yet, or only a failed or pending one."""
        previous = self._records.get(key)
        return previous is None or previous.error is not None or previous.pending

    def has_sample(self, key: Key) -> bool:
        """True when ``key`` holds a sample that did not fail (pending or final)."""
        record = self._records.get(key)
        return record is not None and record.error is None

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[RationaleRecord]:
        """The current record of every key."""
        return list(self._records.values())

    def samples_of(self, example_id: str) -> list[RationaleRecord]:
        """Records already stored for one question, in sample order."""
        return [record for _, record in sorted(self._by_example.get(example_id, {}).items())]

    def append(self, record: RationaleRecord) -> None:
        """Write one record (flushed + fsynced); a key already stored final without error raises DataError."""
        if not self.can_write(record.key):
            raise DataError(
                f"example {record.example_id!r} sample {record.sample_index} is already stored", path=str(self.path)
            )
        self._write(record)

    def revise(self, key: Key, *, kept: bool, reason: str) -> None:
        """Store the final verdict of a stored sample (a no-op when it already has that verdict)."""
        record = self._records[key]
        if record.error is not None:
            raise DataError(f"example {key[0]!r} sample {key[1]} failed; it has no verdict", path=str(self.path))
        if (record.kept, record.reason, record.pending) != (kept, reason, False):
            self._write(dataclasses.replace(record, kept=kept, reason=reason, pending=False))

    def _write(self, record: RationaleRecord) -> None:
        self._appender.append(record.to_dict())
        self._index(record)

    def batch(self):
        """``with store.batch():`` syncs the block's appends once, at its end (``JsonlAppender.batch``)."""
        return self._appender.batch()

    def close(self) -> None:
        self._appender.close()

    def __enter__(self) -> RationaleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
