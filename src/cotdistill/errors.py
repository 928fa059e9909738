"""Exception types. Every user-facing error names the file, line or key at fault."""

from __future__ import annotations


class CotDistillError(Exception):
    """Base class for errors the CLI reports as one clean line (no traceback)."""


class ConfigError(CotDistillError):
    """A config file or override is invalid (unknown key, wrong type, out of range)."""


class DataError(CotDistillError):
    """An input data file is malformed. Carries the file and 1-based line when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path, self.line, self.reason = path, line, message
        where = path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class UnknownNameError(CotDistillError, KeyError):
    """A name looked up in a registry does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
