"""Step checkpoints that a kill cannot leave half-written, and what a resume must match.

* A checkpoint is written into ``<output>/.checkpoint-staging/checkpoint-N`` and renamed to
  ``<output>/checkpoint-N`` only once complete, so ``checkpoint-N`` always holds a whole
  checkpoint. ``last_complete_checkpoint`` skips (with a warning) any ``checkpoint-N`` lacking
  ``student.json`` or ``trainer_state.json``, e.g. one written by an older version.
* ``training_lock``: the output directory's lock, taken by the main process only (every
  process of a distributed run trains into the same directory).
* ``train_inputs.json`` records a hash of the training rows (token ids, labels, weights, so
  data, tokenizer and max_length all count) and of the tokenizer's vocabulary; a resume on
  other data or another tokenizer is refused (``check_resume_inputs``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cotdistill.errors import CotDistillError
from cotdistill.io import atomic_write_json, ensure_output_dir, replace_directory
from cotdistill.locking import output_lock

log = logging.getLogger(__name__)

STAGING_DIR = ".checkpoint-staging"
INPUTS_FILE = "train_inputs.json"
REQUIRED_FILES = ("student.json", "trainer_state.json")
TRAINER_FILES = ("trainer_state.json",)
"""What a plain ``transformers``/TRL Trainer checkpoint holds once written (its state is saved last)."""
NAMES = {"tokenizer": "the tokenizer", "rows": "the training rows"}
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@contextmanager
def training_lock(output_dir: str | Path) -> Iterator[Path]:
    """``locking.output_lock`` on the main process (``RANK`` 0 or unset); other ranks just create the directory."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield ensure_output_dir(output_dir)
        return
    with output_lock(output_dir) as path:
        yield path


def is_complete(checkpoint: Path, required: Sequence[str] = REQUIRED_FILES) -> bool:
    """True when ``checkpoint`` holds every ``required`` file (by default: what a resume reads first)."""
    return all((checkpoint / name).is_file() for name in required)


def last_complete_checkpoint(output_dir: str | Path, required: Sequence[str] = REQUIRED_FILES) -> str | None:
    """The newest (highest N) complete ``checkpoint-N`` under ``output_dir`` (None when there is none);
    ``required``: the files a complete one holds (``TRAINER_FILES`` for a TRL trainer's checkpoints)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
    for _, path in sorted(found, reverse=True):
        if is_complete(path, required):
            return str(path)
        log.warning("skipping %s: incomplete checkpoint (no %s)", path, " or ".join(required))
    return None


def publish_checkpoint(run_dir: Path, name: str, save_total_limit: int | None) -> None:
    """Rename the finished ``STAGING_DIR/name`` to ``run_dir/name``; drop the oldest beyond the limit."""
    from transformers.trainer_utils import rotate_checkpoints

    replace_directory(run_dir / STAGING_DIR / name, run_dir / name)
    rotate_checkpoints(output_dir=str(run_dir), save_total_limit=save_total_limit, use_mtime=False)


def clear_staging(output_dir: str | Path) -> None:
    """Remove what a killed run left half-written in the staging directory."""
    shutil.rmtree(Path(output_dir) / STAGING_DIR, ignore_errors=True)


def inputs_fingerprint(rows: Sequence[dict[str, Any]], tokenizer: Any) -> dict[str, Any]:
    """``{"rows", "num_rows", "tokenizer"}``: sha256 of the training rows and of the tokenizer vocabulary."""
    rows_hash = hashlib.sha256()
    for row in rows:
        fields = {k: row[k] for k in ("input_ids", "labels", "weight", "domain_ids") if k in row}
        rows_hash.update(json.dumps(fields, sort_keys=True, default=float).encode())
    vocab = sorted(tokenizer.get_vocab().items())
    specials = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    tokenizer_hash = hashlib.sha256(json.dumps([vocab, specials]).encode()).hexdigest()
    return {"rows": rows_hash.hexdigest(), "num_rows": len(rows), "tokenizer": tokenizer_hash}


def check_resume_inputs(output_dir: Path, fingerprint: dict[str, Any], *, resuming: bool) -> None:
    """Refuse to resume on other rows or another tokenizer; record the fingerprint of a fresh start."""
    path = output_dir / INPUTS_FILE
    if resuming and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        changed = [name for key, name in NAMES.items() if saved.get(key) != fingerprint[key]]
        if changed:
            raise CotDistillError(
                f"{output_dir}: cannot resume: {' and '.join(changed)} changed since the checkpoint "
                f"({saved.get('num_rows')} rows then, {fingerprint['num_rows']} now); "
                "resume with the same data and student, or train into a new output directory"
            )
        return
    atomic_write_json(path, fingerprint)
