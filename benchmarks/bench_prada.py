"""Training step time of PRADA vs SFT on the same model and the same batch, in one run.

Every mode runs the real trainer code path (``StudentTrainer`` / ``PRADATrainer``: ``training_step``
= forward, loss, backward; then the AdamW step) on one fixed micro-batch of ``--labelled``
source rows (question + rationale) and ``--unlabelled`` target questions, each mode on its own
copy of the same initial student. Modes:

* ``sft``: SFT on that batch (the unlabelled rows carry no loss);
* ``prada-adv``: + reversed domain discriminator; ``prada-prompt``: + soft prompt;
  ``prada``: both (full PRADA);
* ``sft-labelled-only``: SFT on the labelled rows alone, to show what adding target rows costs.

Modes are interleaved step by step (so machine load hits all alike) and the median step time
over ``--steps`` steps (after warm-up) is reported; overhead = median(mode) / median(sft) - 1.
The model is the ``tiny`` preset, or SmolLM2-135M-Instruct when pulled (``--model smollm2``).

    python benchmarks/bench_prada.py [--model tiny|smollm2|DIR] [--lora] [--steps 20]

Writes ``benchmarks/results/prada_overhead.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cotdistill.methods.base import TrainConfig, TrainData
from cotdistill.methods.data import IGNORE_INDEX, Collator
from cotdistill.methods.prada import PRADA, PRADAConfig, PRADATrainer
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models import Student, StudentLoRAConfig
from cotdistill.models.lora import apply_lora
from cotdistill.models.pull import cached_path
from cotdistill.models.tiny import TinyConfig, build_tiny_model, train_tokenizer
from cotdistill.tasks import get_task

RESULTS = Path(__file__).parent / "results"
MODES = ("sft", "prada-adv", "prada-prompt", "prada", "sft-labelled-only")
TARGET_OVERHEAD = 0.15


def load_model(name: str, corpus: list[str], lora: bool) -> tuple[Student, str]:
    """The student to benchmark (``tiny``, ``smollm2`` when pulled, or a HF directory) and a description."""
    if name == "tiny":
        tokenizer = train_tokenizer(corpus, vocab_size=512)
        student = Student(build_tiny_model(TinyConfig(), tokenizer), tokenizer, use_chat_template=False)
    else:
        if name == "smollm2":
            path = cached_path("smollm2-135m-instruct")
            if path is None:
                raise SystemExit(
                    "smollm2-135m-instruct is not pulled: run `cotdistill models pull smollm2-135m-instruct`"
                )
            name = str(path)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        student = Student(
            AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32), AutoTokenizer.from_pretrained(name)
        )
    params = sum(p.numel() for p in student.model.parameters()) / 1e6
    if lora:
        student.model = apply_lora(student.model, StudentLoRAConfig())
    return student, f"{name} ({params:.1f}M parameters, {'LoRA' if lora else 'full fine-tuning'})"


def make_data(labelled: int, unlabelled: int) -> TrainData:
    """Source rows from two arithmetic surfaces, target questions from a near and a far domain."""
    sources = [e for t in ("arith_shopping", "arith_cooking") for e in get_task(t).examples("train", labelled, seed=0)]
    targets = [e for t in ("arith_travel", "coin_flip") for e in get_task(t).examples("train", unlabelled, seed=0)]
    return TrainData(sources, [dataclasses.replace(e, answer="", rationale=None) for e in targets])


def mode_config(mode: str) -> PRADAConfig:
    return PRADAConfig(adversarial=mode in ("prada", "prada-adv"), soft_prompts=mode in ("prada", "prada-prompt"))


def build_trainer(
    mode: str, base: Student, data: TrainData, train: TrainConfig, unlabelled_rows: int, out: Path
) -> tuple[Any, dict]:
    """A trainer for ``mode`` on its own copy of ``base`` and the fixed batch it trains on."""
    student = Student(copy.deepcopy(base.model), base.tokenizer, None, base.use_chat_template)
    method, config = PRADA(), mode_config(mode)
    everything = PRADAConfig(adversarial=True, soft_prompts=False)
    rows = method.build_rows(student, data, everything, train)  # the same rows for every mode
    labelled = [r for r in rows if any(label != IGNORE_INDEX for label in r["labels"])][: train.batch_size]
    unlabelled = [r for r in rows if all(label == IGNORE_INDEX for label in r["labels"])]
    batch_rows = labelled if mode == "sft-labelled-only" else labelled + unlabelled[:unlabelled_rows]
    torch.manual_seed(0)
    method.attach_soft_prompt(student, data, config)
    extra = method.extra_modules(student, data, config)
    if config.adversarial or config.soft_prompts:
        classes = method.domain_classes(data, config)
        trainer: Any = PRADATrainer(
            student, rows, train, out / mode, method_config=config, extra_modules=extra, domain_classes=classes
        )
    else:
        trainer = StudentTrainer(student, rows, train, out / mode, method_config=config)
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    return trainer, Collator(student.tokenizer.pad_token_id)(batch_rows)


def step(trainer: Any, batch: dict) -> float:
    """One optimizer step on ``batch``; returns its wall time in seconds."""
    tokens = int((batch["labels"] != IGNORE_INDEX).sum())
    start = time.perf_counter()
    trainer.training_step(trainer.model, batch, num_items_in_batch=tokens)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny | smollm2 | a HF model directory")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    parser.add_argument("--labelled", type=int, default=16, help="source rows in the batch")
    parser.add_argument("--unlabelled", type=int, default=4, help="target questions in the batch")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = make_data(args.labelled, args.unlabelled)
    corpus = [e.question for e in data.labelled + data.unlabelled] + [e.rationale or "" for e in data.labelled]
    base, description = load_model(args.model, corpus, args.lora)
    train = TrainConfig(batch_size=args.labelled, max_length=256, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {mode: build_trainer(mode, base, data, train, args.unlabelled, Path(tmp)) for mode in MODES}
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(args.warmup + args.steps):
            for mode in MODES:
                elapsed = step(*trainers[mode])
                if i >= args.warmup:
                    times[mode].append(elapsed)

    medians = {mode: statistics.median(values) for mode, values in times.items()}
    shapes = {mode: list(batch["input_ids"].shape) for mode, (_, batch) in trainers.items()}
    result = {
        "model": description,
        "device": str(base.device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "machine": platform.processor() or platform.machine(),
        "batch": {"labelled": args.labelled, "unlabelled": args.unlabelled, "input_ids_shape": shapes},
        "prada": {k: str(v) for k, v in vars(PRADAConfig()).items()},
        "steps": args.steps,
        "median_step_s": medians,
        "overhead_vs_sft": {mode: medians[mode] / medians["sft"] - 1 for mode in MODES},
        "target_overhead": TARGET_OVERHEAD,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prada_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# PRADA training-step overhead vs SFT",
        "",
        f"Model: {description}; device {result['device']}, {result['torch_threads']} torch threads, "
        f"{result['cpu_count']} CPUs (1-minute load average {result['load_average_1m']:.1f} at the end).",
        f"One fixed batch: {args.labelled} source rows + {args.unlabelled} target questions "
        f"(shape {shapes['sft']}); median of {args.steps} interleaved steps after {args.warmup} warm-up.",
        "",
        "| mode | median step (ms) | overhead vs sft |",
        "|---|---|---|",
        *(f"| {mode} | {1000 * medians[mode]:.1f} | {100 * result['overhead_vs_sft'][mode]:+.1f}% |" for mode in MODES),
        "",
        f"Full PRADA overhead on the same batch: **{100 * result['overhead_vs_sft']['prada']:+.1f}%** "
        f"(target <= {100 * TARGET_OVERHEAD:.0f}%).",
    ]
    (args.out / "prada_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
