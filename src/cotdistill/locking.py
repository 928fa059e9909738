"""One process per output directory: ``with output_lock(directory): ...``.

The lock is an exclusive ``flock`` on ``<directory>/.cotdistill.lock``, so the kernel releases it
when the holder exits in any way (a SIGKILL included) and a stale lock never blocks a resume.
The file records the holder (pid, host, command, start time); a second process gets a
``CotDistillError`` naming it. Nested ``output_lock`` calls on one directory in the same process
(a command and the stage it runs) share the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from cotdistill.errors import CotDistillError
from cotdistill.io import ensure_output_dir
from cotdistill.redaction import redact_text

LOCK_NAME = ".cotdistill.lock"

_held: dict[Path, tuple[IO[str], int]] = {}  # resolved directory -> (open lock file, nesting depth)


class OutputLockedError(CotDistillError):
    """Another process is writing into the same output directory."""


@contextmanager
def output_lock(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (created if missing) for the ``with`` block."""
    path = ensure_output_dir(directory).resolve()
    if path in _held:
        handle, depth = _held[path]
        _held[path] = (handle, depth + 1)
        try:
            yield path
        finally:
            handle, depth = _held[path]
            _held[path] = (handle, depth - 1)
        return
    handle = _acquire(path)
    _held[path] = (handle, 1)
    try:
        yield path
    finally:
        del _held[path]
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _acquire(directory: Path) -> IO[str]:
    lock_path = directory / LOCK_NAME
    handle = lock_path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(lock_path)
        handle.close()
        raise OutputLockedError(
            f"{directory} is in use by {holder}; wait for it to finish (or stop it), "
            "or write to another output directory"
        ) from None
    handle.seek(0)
    handle.truncate()
    command = redact_text(" ".join(sys.argv))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": started}))
    handle.flush()
    return handle


def _describe_holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']} (`{info['command']}`, started {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
