"""Top-k scorers for the offline cache: a local teacher (``LocalScorer``) or a served one (``served.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cotdistill.methods.data import Collator
from cotdistill.methods.kd.cache import TopK, completion_count
from cotdistill.methods.kd.teacher import LocalTeacher


def weights_digest(model: nn.Module) -> str:
    """12 hex digits of a hash over the model's state (names, dtypes, shapes and values).

    Part of a local scorer's id, so a teacher re-trained into the same directory gets a new top-k
    cache instead of the old teacher's.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(memoryview(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()[:12]


class LocalScorer:
    """Top-k of a local teacher's ``log_softmax(logits / temperature)``, ``batch_size`` rows at a time.

    ``id`` is ``hf:<name>@<weights digest>``: the cache follows the teacher's weights, not its name.
    """

    def __init__(self, teacher: LocalTeacher, *, temperature: float = 1.0, batch_size: int = 8, chunk_size: int = 256):
        self.teacher = teacher
        self.temperature = temperature
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.id = f"hf:{teacher.name}@{weights_digest(teacher.model)}"
        self.collate = Collator(teacher.tokenizer.pad_token_id or 0)

    @torch.no_grad()
    def score(self, rows: Sequence[dict[str, Any]], k: int) -> list[TopK]:
        device = next(self.teacher.model.parameters()).device
        out: list[TopK] = []
        for start in range(0, len(rows), self.batch_size):
            part = rows[start : start + self.batch_size]
            batch = {name: t.to(device) for name, t in self.collate(part).items()}
            hidden = self.teacher.selected_hidden(batch["input_ids"], batch["attention_mask"], batch["labels"])
            ids, logprobs = [], []
            for a in range(0, hidden.shape[0], self.chunk_size):
                logits = self.teacher.logits(hidden[a : a + self.chunk_size]) / self.temperature
                top = torch.log_softmax(logits, dim=-1).topk(k, dim=-1)
                ids.append(top.indices.to(torch.int32).cpu())
                logprobs.append(top.values.cpu())
            counts = [completion_count(r) for r in part]
            out += list(zip(torch.cat(ids).split(counts), torch.cat(logprobs).split(counts), strict=True))
        return out
