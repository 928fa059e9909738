"""Which decoder layers to keep: the cross-entropy of depth-pruned students on oracle rationales.

Each candidate ``keep_layers`` list is applied to the pretrained model (``student.keep_layers``,
the same code a recipe uses) and scored, without training, by its mean per-token cross-entropy
on oracle CoT rows of the default suite's sources, tokenised exactly as SFT trains on them. A
lower starting loss means less for SFT or KD to recover.

    python benchmarks/prune_choice.py [--model smollm2-135m-instruct] [--per-task 8] [--threads 1]

Writes ``benchmarks/results/prune_choice.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from cotdistill.methods.base import TrainConfig, TrainData
from cotdistill.methods.data import IGNORE_INDEX, Collator
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.models import StudentConfig, load_student
from cotdistill.tasks import get_task

RESULTS = Path(__file__).parent / "results"
TASKS = ("arith_shopping", "arith_cooking", "coin_flip")
CANDIDATES: dict[str, list[int] | None] = {
    "all 30 layers": None,
    "every third from layer 2 (the first KD recipe)": list(range(2, 30, 3)),
    "every third from layer 0, and the last": [*range(0, 27, 3), 29],
    "the first 8 and the last 2": [*range(8), 28, 29],
    "the first 9 and the last": [*range(9), 29],
    "every other from layer 0, and the last (15)": [*range(0, 28, 2), 29],
    "the first 18 and the last 2 (20)": [*range(18), 28, 29],
}


def cross_entropy(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Mean cross-entropy per completion token of ``batch``, in fp32."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    targets = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return float(losses) / int((targets != IGNORE_INDEX).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--per-task", type=int, default=8, help="oracle rows per source task")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = TrainData([e for t in TASKS for e in get_task(t).examples("train", args.per_task, seed=0)])
    results = []
    for name, keep in CANDIDATES.items():
        started = time.perf_counter()
        student = load_student(StudentConfig(model=args.model, keep_layers=keep))
        rows = SFT().build_rows(student, data, SFTMethodConfig(), TrainConfig(max_length=256))
        batch = Collator(student.tokenizer.pad_token_id)(rows)
        results.append(
            {
                "candidate": name,
                "keep_layers": keep,
                "layers": student.model.config.num_hidden_layers,
                "cross_entropy": cross_entropy(student.model.eval(), batch),
                "seconds": time.perf_counter() - started,
            }
        )
        print(f"{name}: {results[-1]['cross_entropy']:.2f}", flush=True)
    summary = {
        "model": args.model,
        "rows": len(rows),
        "tasks": TASKS,
        "threads": torch.get_num_threads(),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prune_choice.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Which layers to keep: cross-entropy of depth-pruned students before training",
        "",
        f"Model `{args.model}`; {len(rows)} oracle CoT rows ({args.per_task} per source task: {', '.join(TASKS)}), "
        "tokenised as SFT trains on them; fp32; mean cross-entropy per completion token. "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads.",
        "",
        "| candidate | layers | keep_layers | cross-entropy |",
        "|---|---|---|---|",
        *(
            f"| {r['candidate']} | {r['layers']} | {r['keep_layers'] or 'all'} | {r['cross_entropy']:.2f} |"
            for r in results
        ),
        "",
        "Command: `python benchmarks/prune_choice.py" + (f" --threads {args.threads}`" if args.threads else "`"),
    ]
    (args.out / "prune_choice.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
