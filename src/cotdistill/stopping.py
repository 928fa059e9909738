"""Stop strings: where a completion's text ends (shared by every teacher backend and the generation engine)."""

from __future__ import annotations

from collections.abc import Sequence


def trim_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (the stop string is dropped)."""
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]
