"""Stages of a pipeline run, each declared once with a fingerprint of its inputs.

One rule for every pipeline (``cot``, ``redis``, ``lm_guided``):

* a stage records the fingerprint of its inputs when it starts (``stage.json`` in its directory,
  or ``stages/<key>.json`` for outputs in shared directories). A stage whose record matches is
  reused when finished and continued when not;
* a stage whose inputs changed is re-run: its outputs are removed first. A stage's inputs
  include those of the stages it reads (``Stage.after``), so everything after it re-runs too;
* with ``resume`` (``cotdistill run --resume``) a changed stage that holds teacher outputs or
  trained models (``OnChange.REFUSE``) is refused instead, naming what changed; stages that are
  cheap to redo (evaluations: ``OnChange.RERUN``) are re-run;
* every stage is checked before any of them runs (``prepare``), so a refused resume leaves
  the run directory as it was;
* settings that change no result (progress bars, logging, trackers, checkpoints: ``COSMETIC``) are left out
  of fingerprints, on both sides, so a record written with them still matches.

A stage directory written before stages were recorded (no record) is adopted as it is.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cotdistill.config import redact, to_dict
from cotdistill.errors import ConfigError
from cotdistill.io import atomic_write_json

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
COSMETIC = frozenset({"progress", "logging_steps", "report_to", "run_name", "save_steps", "save_total_limit"})
"""Setting names that change how a run is shown, logged or checkpointed, never what it produces."""


class OnChange(StrEnum):
    """What ``--resume`` does with a stage whose inputs changed."""

    REFUSE = "refuse"
    RERUN = "rerun"


def fingerprint(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON data of ``inputs`` (configs as dicts, secrets redacted, ``COSMETIC`` keys dropped)."""
    return _drop_cosmetic(json.loads(json.dumps(redact(to_dict(dict(inputs))), default=str)))


def _drop_cosmetic(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_cosmetic(v) for k, v in data.items() if k not in COSMETIC}
    if isinstance(data, list):
        return [_drop_cosmetic(v) for v in data]
    return data


@dataclass(frozen=True)
class Stage:
    """A stage: its name, where its record lives, what it is made from and the paths it writes."""

    name: str
    record: Path
    inputs: Mapping[str, Any]
    outputs: tuple[Path, ...] = ()
    on_change: OnChange = OnChange.REFUSE
    fingerprint: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", fingerprint(self.inputs))

    @classmethod
    def directory(
        cls,
        directory: Path,
        inputs: Mapping[str, Any],
        *,
        on_change: OnChange = OnChange.REFUSE,
        outputs: Sequence[Path] | None = None,
    ) -> Stage:
        """A stage that owns ``directory`` (or only ``outputs`` inside it) and records in it."""
        return cls(str(directory), directory / STAGE_FILE, inputs, tuple(outputs or (directory,)), on_change)

    @classmethod
    def files(
        cls, records: Path, key: str, outputs: Sequence[Path], inputs: Mapping[str, Any], *, on_change: OnChange
    ) -> Stage:
        """A stage whose outputs share directories with other stages; its record is ``records/<key>.json``."""
        return cls(str(outputs[0]), records / f"{key}.json", inputs, tuple(outputs), on_change)

    def after(self, **inputs: Any) -> dict[str, Any]:
        """The inputs of a stage that reads this one: this stage's inputs plus its own."""
        return {**self.inputs, **inputs}

    def changes(self) -> list[str] | None:
        """Dotted keys whose values differ from the record (``[]``: same; ``None``: no record)."""
        if not self.record.exists():
            return None
        previous = _drop_cosmetic(json.loads(self.record.read_text(encoding="utf-8")))
        return _differences(previous, self.fingerprint)


def starting_afresh(stages: Mapping[str, Stage]) -> list[str]:
    """Names of the stages that ``prepare`` will start from nothing: no record yet, or changed inputs."""
    return [name for name, stage in stages.items() if stage.changes() != []]


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(old.keys() | new.keys())
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def prepare(stages: Iterable[Stage], *, resume: bool) -> None:
    """Check every stage against its record, then act on the rule of the module docstring.

    Raises ConfigError for the first changed ``REFUSE`` stage when ``resume`` is set, before
    anything is removed or written.
    """
    stages = list(stages)
    changed = {s.name: c for s in stages if (c := s.changes())}
    if resume:
        for stage in stages:
            if stage.name in changed and stage.on_change is OnChange.REFUSE:
                raise ConfigError(_refusal(stage, changed[stage.name]))
    for stage in stages:
        if stage.name in changed:
            log.warning("%s: its inputs changed (%s); running it again", stage.name, ", ".join(changed[stage.name]))
            for path in (*stage.outputs, stage.record):
                _remove(path)
        if stage.name in changed or not stage.record.exists():
            atomic_write_json(stage.record, stage.fingerprint)


def _refusal(stage: Stage, changes: list[str]) -> str:
    sections = sorted({c.split(".", 1)[0] for c in changes})
    shown = ", ".join(changes[:6]) + (", ..." if len(changes) > 6 else "")
    return (
        f"{stage.name} was made with a different {', '.join(sections)} config ({shown}); "
        "use a new --output directory (or delete that stage) to run the changed recipe"
    )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
