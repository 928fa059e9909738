"""Plain-text tables and progress bars for the terminal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as an aligned plain-text table (also valid-looking in logs)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(format_table(headers, rows))


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", disable: bool = False) -> Iterable[T]:
    """A tqdm bar with rate and ETA (shown on a terminal, quiet when stderr is not one)."""
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True, leave=False)


def counter_bar(total: int, *, desc: str = "", disable: bool = False) -> tqdm:
    """A tqdm bar advanced by hand (``bar.update(n)``), e.g. counting questions across batches."""
    return tqdm(total=total, desc=desc, disable=disable, dynamic_ncols=True, leave=False)
