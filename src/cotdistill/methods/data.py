"""Training rows for completion-only SFT: tokenisation, batching by length, padding.

A row is ``{"input_ids": [...], "labels": [...], "weight": float}`` (optionally ``"domain_ids": int``):
``labels`` is -100 on the prompt and the token id on the completion (which ends with EOS), so
the loss never sees the prompt. Rows with every label -100 (unlabelled questions) are allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Sampler

IGNORE_INDEX = -100
TruncationSide = Literal["left", "right"]

log = logging.getLogger(__name__)


def make_row(
    student: Any,
    prompt: str,
    target: str | None,
    *,
    max_length: int,
    weight: float = 1.0,
    truncation_side: TruncationSide = "right",
) -> dict[str, Any]:
    """One row: ``student.encode_prompt(prompt)`` + the completion for ``target`` (None: prompt only).

    A row longer than ``max_length`` is cut on ``truncation_side``: ``right`` keeps its first
    ``max_length`` tokens (the prompt's start), ``left`` its last (the completion's end and EOS).
    """
    prompt_ids = student.encode_prompt(prompt)
    completion_ids = student.encode_completion(target) if target is not None else []
    input_ids = prompt_ids + completion_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    keep = slice(None, max_length) if truncation_side == "right" else slice(-max_length, None)
    return {"input_ids": input_ids[keep], "labels": labels[keep], "weight": float(weight)}


def count_truncated(rows: Sequence[dict[str, Any]], max_length: int) -> int:
    return sum(len(r["input_ids"]) >= max_length for r in rows)


class Collator:
    """Pads a list of rows on the right into tensors.

    Output: ``input_ids`` (B, T), ``attention_mask`` (B, T), ``labels`` (B, T) with -100 on
    padding, ``weight`` (B,), and ``domain_ids`` (B,) when the rows carry them. ``T`` is the
    longest row rounded up to ``pad_to_multiple_of``.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 1):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            attention_mask[i, :n] = 1
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "weight": torch.tensor([r.get("weight", 1.0) for r in rows], dtype=torch.float32),
        }
        if all("domain_ids" in r for r in rows):
            batch["domain_ids"] = torch.tensor([r["domain_ids"] for r in rows], dtype=torch.long)
        return batch


class LengthGroupedSampler(Sampler[int]):
    """Shuffled order in which consecutive ``batch_size`` indices have similar lengths.

    Indices are shuffled, cut into mega-batches of ``mega * batch_size``, sorted by length inside
    each (unless ``group`` is off), then the resulting batches are shuffled. The order depends
    only on ``seed`` and the epoch set by ``set_epoch`` (so a resumed run sees the same batches).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, *, group: bool = True, mega: int = 16):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group = group
        self.mega = mega
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        size = self.batch_size * self.mega
        batches: list[list[int]] = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            if self.group:
                chunk.sort(key=lambda i: -self.lengths[i])
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        tail = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield from batches[b]
        for batch in tail:  # a short last batch stays last so every other batch stays whole
            yield from batch
