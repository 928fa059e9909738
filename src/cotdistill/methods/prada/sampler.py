"""Micro-batches of labelled source rows followed by unlabelled target questions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from cotdistill.methods.data import LengthGroupedSampler


class MixedBatchSampler(Sampler[int]):
    """Yields micro-batches of ``labelled_per_batch`` labelled indices then ``unlabelled_per_batch``
    unlabelled ones (the DataLoader batches ``labelled_per_batch + unlabelled_per_batch`` at a time).

    Labelled rows follow ``LengthGroupedSampler`` (one pass per epoch, seeded). Unlabelled rows are
    taken round-robin over their groups (``unlabelled_groups[i]`` is the group, e.g. the domain, of
    ``unlabelled[i]``; one group when omitted), each group cycling through seeded permutations, so
    every batch holds the target domains in equal shares rather than a random mix.
    Only the last batch may be short.
    """

    def __init__(
        self,
        labelled: Sequence[int],
        unlabelled: Sequence[int],
        lengths: Sequence[int],
        labelled_per_batch: int,
        unlabelled_per_batch: int,
        seed: int,
        *,
        group: bool = True,
        unlabelled_groups: Sequence[int] | None = None,
    ):
        self.labelled = list(labelled)
        self.unlabelled = list(unlabelled)
        groups = list(unlabelled_groups) if unlabelled_groups is not None else [0] * len(self.unlabelled)
        if len(groups) != len(self.unlabelled):
            raise ValueError(f"unlabelled_groups has {len(groups)} entries for {len(self.unlabelled)} rows")
        self.groups = [[row for row, g in zip(self.unlabelled, groups) if g == key] for key in sorted(set(groups))]
        self.labelled_per_batch = labelled_per_batch
        self.unlabelled_per_batch = unlabelled_per_batch if self.unlabelled else 0
        self.seed = seed
        self.epoch = 0
        self.inner = LengthGroupedSampler([lengths[i] for i in self.labelled], labelled_per_batch, seed, group=group)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def _batches(self) -> int:
        return -(-len(self.labelled) // self.labelled_per_batch)

    def __len__(self) -> int:
        return len(self.labelled) + self._batches() * self.unlabelled_per_batch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7)
        pools: list[list[int]] = [[] for _ in self.groups]
        turn = 0
        order = [self.labelled[i] for i in self.inner]
        for start in range(0, len(order), self.labelled_per_batch):
            yield from order[start : start + self.labelled_per_batch]
            for _ in range(self.unlabelled_per_batch):
                g = turn % len(self.groups)
                turn += 1
                if not pools[g]:
                    pools[g] = [self.groups[g][i] for i in torch.randperm(len(self.groups[g]), generator=generator)]
                yield pools[g].pop()
