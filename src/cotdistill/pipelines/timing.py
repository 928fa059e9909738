"""Wall time of each stage of a run, kept in ``timings.json`` across resumed processes.

A run that is killed and resumed is made by several processes; ``timings.json`` maps a stage's
name to the seconds every process spent in it, so the report of a resumed run still says what
each stage cost. A stage that a later process only reuses adds the few seconds of loading it.
Time is written when a stage ends or fails; the unfinished part of a stage in a process killed
by a signal that Python cannot catch (``SIGKILL``) is not counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cotdistill.io import atomic_write_json

TIMINGS_JSON = "timings.json"


class StageTimes:
    """Seconds per stage name, summed over processes and saved to ``path`` after each stage.

    ``restart`` names stages whose earlier time no longer counts (their inputs changed, or they
    are redone on every run): their first measurement in this process replaces the saved one.
    """

    def __init__(self, path: Path, *, restart: Iterable[str] = ()) -> None:
        self.path = Path(path)
        saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        restarted = set(restart)
        self.seconds: dict[str, float] = {k: float(v) for k, v in saved.items() if k not in restarted}

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Adds the wall time of the ``with`` block to ``name`` and saves, also when the block raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)
            atomic_write_json(self.path, self.seconds)

    def total(self) -> float:
        """Seconds over all stages."""
        return round(sum(self.seconds.values()), 2)
