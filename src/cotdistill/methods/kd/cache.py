"""The offline top-k cache: the teacher's k most likely next tokens at every completion position.

Computed once per set of training rows (the tokenised prompts + rationales of one rationale
file), stored as safetensors shards under ``<root>/<key>/`` and reused by every run on the same
rows, whatever its seed or variant. ``key`` hashes the teacher's id, ``k``, the temperature and
the rows; a different file, prompt format, teacher or k gets its own cache.

Layout: ``manifest.json`` (teacher, k, temperature, rows, shard size) and
``shard-NNNNN.safetensors`` with ``ids`` (M, k) int32, ``logprobs`` (M, k) float32 and
``offsets`` (R + 1,) int64 over the shard's R rows (metadata ``keys``: their row keys, JSON).
Each shard is written atomically; an interrupted build resumes at the first missing shard, and
concurrent builds of one cache wait on a lock file instead of scoring twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import torch

from cotdistill.console import progress
from cotdistill.errors import CotDistillError
from cotdistill.io import atomic_write_json
from cotdistill.methods.data import IGNORE_INDEX

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TopK = tuple[torch.Tensor, torch.Tensor]  # (n, k) int32 ids, (n, k) float32 log-probs


class TopKScorer(Protocol):
    """Scores rows: for each, the teacher's top-k (ids, log-probs) at its completion positions."""

    id: str

    def score(self, rows: Sequence[dict[str, Any]], k: int) -> list[TopK]: ...


def row_key(row: dict[str, Any]) -> str:
    """Content hash of a row's token ids and label mask."""
    mask = [label != IGNORE_INDEX for label in row["labels"]]
    return hashlib.sha256(json.dumps([row["input_ids"], mask]).encode()).hexdigest()[:32]


def completion_count(row: dict[str, Any]) -> int:
    """Positions of a row the loss counts (those followed by a completion token)."""
    return sum(label != IGNORE_INDEX for label in row["labels"][1:])


def default_cache_root() -> Path:
    from cotdistill.models.pull import CACHE_ENV

    base = os.environ.get(CACHE_ENV)
    return Path(base) / "kd-topk" if base else Path.home() / ".cache" / "cotdistill" / "kd-topk"


class TopKCache:
    """The top-k cache of ``rows`` scored by ``scorer`` (see the module docstring)."""

    def __init__(
        self,
        root: str | Path,
        rows: Sequence[dict[str, Any]],
        scorer: TopKScorer,
        *,
        k: int,
        temperature: float = 1.0,
        shard_rows: int = 128,
    ):
        unique = {row_key(r): r for r in rows if completion_count(r)}
        self.keys = sorted(unique)
        self.rows = [unique[key] for key in self.keys]
        self.scorer = scorer
        self.k = k
        self.temperature = temperature
        self.shard_rows = shard_rows
        digest = hashlib.sha256(json.dumps([scorer.id, k, temperature, self.keys]).encode()).hexdigest()[:24]
        self.directory = Path(root) / digest

    @property
    def num_shards(self) -> int:
        return -(-len(self.rows) // self.shard_rows)

    def shard_path(self, index: int) -> Path:
        return self.directory / f"shard-{index:05d}.safetensors"

    def missing_shards(self) -> list[int]:
        return [i for i in range(self.num_shards) if not self.shard_path(i).exists()]

    def build(self, *, show_progress: bool = True) -> None:
        """Score every row without a shard yet (resumable; one builder at a time)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.directory / MANIFEST,
            {
                "teacher": self.scorer.id,
                "k": self.k,
                "temperature": self.temperature,
                "rows": len(self.rows),
                "shard_rows": self.shard_rows,
            },
        )
        with self._lock():
            missing = self.missing_shards()
            if missing:
                log.info("top-k cache %s: scoring %d of %d shards", self.directory, len(missing), self.num_shards)
            for index in progress(missing, desc="teacher top-k", disable=not show_progress):
                self._write_shard(index)

    def _write_shard(self, index: int) -> None:
        from safetensors.torch import save_file

        start = index * self.shard_rows
        rows = self.rows[start : start + self.shard_rows]
        scored = self.scorer.score(rows, self.k)
        for row, (ids, logprobs) in zip(rows, scored, strict=True):
            if ids.shape != (completion_count(row), self.k) or logprobs.shape != ids.shape:
                raise CotDistillError(
                    f"teacher {self.scorer.id} returned top-k of shape {tuple(ids.shape)} for a row with "
                    f"{completion_count(row)} completion positions (k={self.k})"
                )
        counts = torch.tensor([0] + [ids.shape[0] for ids, _ in scored], dtype=torch.int64)
        tensors = {
            "ids": torch.cat([ids.to(torch.int32) for ids, _ in scored]),
            "logprobs": torch.cat([lp.to(torch.float32) for _, lp in scored]),
            "offsets": counts.cumsum(0),
        }
        keys = self.keys[start : start + self.shard_rows]
        path = self.shard_path(index)
        partial = path.with_suffix(".partial")
        save_file(tensors, str(partial), metadata={"keys": json.dumps(keys)})
        os.replace(partial, path)

    def load(self) -> dict[str, TopK]:
        """Row key -> (ids, log-probs); raises when a shard is missing (call ``build`` first)."""
        from safetensors.torch import load_file, safe_open

        missing = self.missing_shards()
        if missing:
            raise CotDistillError(f"top-k cache {self.directory} lacks shards {missing}; build it first")
        table: dict[str, TopK] = {}
        for index in range(self.num_shards):
            path = str(self.shard_path(index))
            with safe_open(path, framework="pt") as handle:
                keys = json.loads(handle.metadata()["keys"])
            tensors = load_file(path)
            offsets = tensors["offsets"].tolist()
            for i, key in enumerate(keys):
                a, b = offsets[i], offsets[i + 1]
                table[key] = (tensors["ids"][a:b], tensors["logprobs"][a:b])
        return table

    @contextmanager
    def _lock(self):
        with open(self.directory / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
