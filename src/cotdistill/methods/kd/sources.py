"""Teacher sources as the trainer sees them: per micro-batch, a function giving a chunk's KD sum.

``chunk_loss(loss, inputs)`` returns ``f(student_logits, start, end) -> scalar``: the summed
divergence over the batch's completion positions ``start:end`` (the row-major order of
``teacher.completion_mask``), with ``student_logits`` (end - start, V).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cotdistill.methods.kd.cache import TopK, completion_count, row_key
from cotdistill.methods.kd.losses import KDLoss, topk_token_sum
from cotdistill.methods.kd.teacher import LocalTeacher
from cotdistill.methods.kd.vocab import VocabularyMismatchError

ChunkLoss = Callable[[torch.Tensor, int, int], torch.Tensor]


class OnlineSource:
    """A local teacher run on the same micro-batch (full-vocabulary divergence)."""

    def __init__(self, teacher: LocalTeacher):
        self.teacher = teacher

    def chunk_loss(self, loss: KDLoss, inputs: dict[str, torch.Tensor]) -> ChunkLoss:
        hidden = self.teacher.selected_hidden(inputs["input_ids"], inputs["attention_mask"], inputs["labels"])

        def chunk(student_logits: torch.Tensor, start: int, end: int) -> torch.Tensor:
            return loss.token_sum(student_logits, self.teacher.logits(hidden[start:end]))[0]

        return chunk


class TopKSource:
    """Top-k teacher log-probs looked up by row content in a loaded ``TopKCache`` table."""

    def __init__(self, table: dict[str, TopK], student_vocab_size: int, teacher_id: str):
        top = max((int(ids.max()) for ids, _ in table.values() if ids.numel()), default=-1)
        if top >= student_vocab_size:
            raise VocabularyMismatchError(
                f"teacher {teacher_id} returned token id {top}, beyond the student's {student_vocab_size} logits; "
                "logit-level KD needs one vocabulary"
            )
        self.table = table
        self.teacher_id = teacher_id

    def lookup(self, inputs: dict[str, torch.Tensor]) -> TopK:
        """(N, k) ids and log-probs of the micro-batch's completion positions, rows in order."""
        lengths = inputs["attention_mask"].sum(1).tolist()
        ids, logprobs = [], []
        for i, n in enumerate(lengths):
            row = {"input_ids": inputs["input_ids"][i, :n].tolist(), "labels": inputs["labels"][i, :n].tolist()}
            if not completion_count(row):
                continue
            entry = self.table.get(row_key(row))
            if entry is None:
                raise KeyError(f"a training row is not in the top-k cache of {self.teacher_id}")
            ids.append(entry[0])
            logprobs.append(entry[1])
        device = inputs["input_ids"].device
        return torch.cat(ids).to(device), torch.cat(logprobs).to(device)

    def chunk_loss(self, loss: KDLoss, inputs: dict[str, torch.Tensor]) -> ChunkLoss:
        ids, logprobs = self.lookup(inputs)

        def chunk(student_logits: torch.Tensor, start: int, end: int) -> torch.Tensor:
            return topk_token_sum(loss, student_logits, ids[start:end], logprobs[start:end])

        return chunk
