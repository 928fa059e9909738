"""JSONL and atomic file helpers shared by every stage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from cotdistill.errors import CotDistillError, DataError

T = TypeVar("T")


def require_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path; DataError when it does not exist or is a directory."""
    path = Path(path)
    if not path.exists():
        raise DataError("file does not exist", path=str(path))
    if path.is_dir():
        raise DataError("is a directory; expected a file", path=str(path))
    return path


def iter_text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 file (lines keep their ``\\n``).

    A missing file or bytes that are not UTF-8 raise DataError naming the file, the line and the
    byte offset in the file.
    """
    path = require_file(path)
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {offset + exc.start})",
                    path=str(path),
                    line=number,
                ) from None
            offset += len(raw)


def read_text(path: str | os.PathLike) -> str:
    """The whole text of a UTF-8 file (errors as in ``iter_text_lines``)."""
    return "".join(line for _, line in iter_text_lines(path))


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line; bad JSON raises DataError."""
    for number, line in iter_text_lines(path):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=number) from None


def read_records(
    path: str | os.PathLike,
    parse: Callable[[Any], T],
    *,
    skip_invalid: bool = False,
    counter: dict[str, int] | None = None,
) -> list[T]:
    """Read a JSONL file and turn every line into a record with ``parse``.

    ``parse`` raises ``ValueError``/``KeyError``/``TypeError`` on a bad record; the error is
    re-raised as a DataError naming the file and line, or, with ``skip_invalid``, the line is
    skipped and counted in ``counter["skipped"]``. An empty file is an error.
    """
    path = require_file(path)
    records: list[T] = []
    skipped = 0
    for number, line in iter_text_lines(path):
        if not line.strip():
            continue
        try:
            records.append(parse(json.loads(line)))
        except json.JSONDecodeError as exc:
            if not skip_invalid:
                raise DataError(
                    f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=number
                ) from None
            skipped += 1
        except (KeyError, ValueError, TypeError) as exc:
            if not skip_invalid:
                raise DataError(_describe(exc), path=str(path), line=number) from None
            skipped += 1
    if counter is not None:
        counter["skipped"] = counter.get("skipped", 0) + skipped
    if not records:
        raise DataError("no valid records (file is empty or every line was skipped)", path=str(path))
    return records


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write rows as JSONL; returns the number of rows written."""
    count = 0

    def lines() -> Iterator[str]:
        nonlocal count
        for row in rows:
            count += 1
            yield json.dumps(row, ensure_ascii=False) + "\n"

    atomic_write_text(path, "".join(lines()))
    return count


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the output directory ``path`` (and parents); one that is a file raises CotDistillError."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise CotDistillError(f"{path}: output path {part} is a file, not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def replace_directory(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move the finished directory ``staging`` to ``target`` by rename, replacing any old ``target``.

    Readers see the old directory or the new one, never a half-written one (both paths must be
    on one file system).
    """
    staging, target = Path(staging), Path(target)
    retired = target.with_name(f".{target.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


class JsonlAppender:
    """Append-only JSONL writer that flushes and fsyncs each record (crash-safe resume); inside
    ``with appender.batch():`` each record is flushed and the fsync comes once, at the end of the
    batch (a crash of the machine then loses at most that batch; a killed process loses nothing).

    A trailing partial line left by a crash is dropped on open, so the file stays valid JSONL.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_partial_last_line(self.path)
        self._handle = self.path.open("a", encoding="utf-8")
        self._deferred = False

    def append(self, row: dict[str, Any]) -> None:
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()  # readers see the line at once; only the fsync waits for the batch
        if not self._deferred:
            self.sync()

    def sync(self) -> None:
        """Flush and fsync what was written so far."""
        self._handle.flush()
        os.fsync(self._handle.fileno())

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Appends in the block are synced once, when it ends (also when it raises)."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False
            self.sync()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_partial_last_line(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(cut)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
