"""On-policy rows: the student samples each completion; the teacher then scores those tokens.

Given a collated micro-batch, every row keeps its prompt (the tokens before its first labelled
one) and gets a fresh completion sampled from the student (ending at EOS or ``max_new_tokens``).
The new rows carry ``weight`` 0, so the cross-entropy ignores the student's own samples and only
the divergence to the teacher trains on them (GKD, arXiv 2306.13649).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cotdistill.methods.data import IGNORE_INDEX
from cotdistill.models.student import Student


def split_prompts(batch: dict[str, torch.Tensor]) -> list[tuple[list[int], bool]]:
    """Each row's prompt ids and whether the row had a completion (unlabelled rows have none)."""
    prompts = []
    for ids, labels, n in zip(
        batch["input_ids"], batch["labels"], batch["attention_mask"].sum(1).tolist(), strict=True
    ):
        labelled = (labels[:n] != IGNORE_INDEX).nonzero()
        cut = int(labelled[0]) if len(labelled) else n
        prompts.append((ids[:cut].tolist(), bool(len(labelled))))
    return prompts


@torch.no_grad()
def on_policy_batch(
    student: Student,
    batch: dict[str, torch.Tensor],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    *,
    max_new_tokens: int,
    temperature: float,
    max_length: int,
) -> dict[str, torch.Tensor]:
    """The batch with each labelled row's completion replaced by a student sample (see the module docstring)."""
    from transformers import GenerationConfig

    prompts = split_prompts(batch)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        pad_token_id=student.tokenizer.pad_token_id,
        eos_token_id=student.eos_token_ids(),
        use_cache=True,
    )
    sampled_rows = [ids for ids, labelled in prompts if labelled]
    was_training = student.model.training
    student.model.eval()
    try:
        samples = iter(student.generate_token_ids(sampled_rows, config, keep_eos=True) if sampled_rows else [])
    finally:
        student.model.train(was_training)
    rows = []
    for i, (prompt, labelled) in enumerate(prompts):
        completion = next(samples) if labelled else []
        row = {
            "input_ids": (prompt + completion)[:max_length],
            "labels": ([IGNORE_INDEX] * len(prompt) + completion)[:max_length],
            "weight": 0.0 if labelled else float(batch["weight"][i]),
        }
        if "domain_ids" in batch:
            row["domain_ids"] = int(batch["domain_ids"][i])
        rows.append(row)
    device = batch["input_ids"].device
    return {name: tensor.to(device) for name, tensor in collate(rows).items()}
