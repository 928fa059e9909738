"""TRL trainer steps on CPU with the fused LM head scoring every position or only the labelled ones.

TRL's SFT, DPO and GRPO trainers score tokens through a chunked LM head that, off Triton devices,
runs over every position of each row; ``cotdistill.methods.trl_fused_head.compact_fused_head``
makes a CPU score only the positions with a label. ReDis rows are mostly prompt (the seen
examples), so this is where the difference shows. The rows here are real ReDis rows built from
generated List Functions and 1D-ARC tasks with the ReDis prompts:

* ``sft``: TRL's ``SFTTrainer`` on rule-generation items (prompt masked), as ReDis stage 3;
* ``dpo``: TRL's ``DPOTrainer`` on preference pairs (true rule chosen, another task's rejected), as
  ReDis stage 4, with its reference model.

The student is SmolLM2-135M-Instruct with a LoRA adapter (r 8), as in
``recipes/redis-smollm2-lora.yaml`` (the tiny preset when SmolLM2 is not pulled), at the default
precision. For each trainer one fixed batch is built; ``training_step`` (forward + backward, also
the reference forward for DPO) is timed alternately with and without the switch, after one warm-up
of each. Times are process CPU seconds per torch thread, so the ratio holds on a shared machine.

    python benchmarks/bench_trl_fused_head.py [--steps 3] [--batch-size 8] [--threads 1] [--trainers sft dpo]

Writes benchmarks/results/trl_fused_head.json and .md (rows of trainers not measured in this run
are kept from the file, with their own settings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def redis_items(n: int) -> tuple[list[Any], list[Any]]:
    """``n`` rule-generation SFT items and ``n`` preference pairs from generated tasks."""
    from cotdistill.methods.redis.pairs import PreferencePair, SFTItem
    from cotdistill.methods.redis.prompts import rule_prompt
    from cotdistill.tasks.inductive import sample_tasks

    tasks = sample_tasks("list_functions", n // 2, seed=0) + sample_tasks("arc1d", n - n // 2, seed=0)
    items, pairs = [], []
    for i, task in enumerate(tasks):
        prompt = rule_prompt(task.train)
        other = tasks[(i + 1) % len(tasks)]
        items.append(SFTItem("rule_generation", task.idx, task.domain, prompt, task.rule.text))
        pairs.append(PreferencePair(task.idx, task.domain, prompt, task.rule.text, other.rule.text, 1, 0))
    return items, pairs


def trainers(args: argparse.Namespace, out: Path) -> Iterator[tuple[str, Any]]:
    """(name, TRL trainer not trained yet) over the ReDis rows on a fresh LoRA student, one at a time."""
    from cotdistill.methods.redis.train import ReDisTrainConfig, _trainable, preference_rows, preference_trainer
    from cotdistill.models import StudentConfig, StudentLoRAConfig, load_student

    settings = ReDisTrainConfig(batch_size=args.batch_size, max_length=1024)
    items, pairs = redis_items(args.batch_size)
    if "sft" in args.trainers:
        yield "sft", _sft_trainer(args.model, settings, items, out)
    if "dpo" in args.trainers:
        student = load_student(StudentConfig(model=args.model))
        _trainable(student, StudentLoRAConfig(r=8, alpha=16))
        rows = preference_rows(student, pairs, settings.max_length, "dpo")
        yield "dpo", preference_trainer(student, rows, settings, "dpo", out / "dpo")


def _sft_trainer(model: str, settings: Any, items: list[Any], out: Path) -> Any:
    """TRL's ``SFTTrainer`` over ``items`` as ReDis stage 3 builds it."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from cotdistill.methods.redis.train import _trainable, tokenize_sft, training_args
    from cotdistill.mixed_precision import make_trainer
    from cotdistill.models import StudentConfig, StudentLoRAConfig, load_student

    student = load_student(StudentConfig(model=model))
    _trainable(student, StudentLoRAConfig(r=8, alpha=16))
    sft_args, precision = training_args(
        student,
        settings,
        "sft",
        out / "sft",
        SFTConfig,
        completion_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
    )
    dataset = Dataset.from_list(tokenize_sft(student, items, settings.max_length))
    return make_trainer(
        SFTTrainer,
        precision,
        model=student.model,
        args=sft_args,
        train_dataset=dataset,
        processing_class=student.tokenizer,
    )


def one_batch(trainer: Any) -> dict[str, Any]:
    return next(iter(trainer.get_train_dataloader()))


def labelled_share(batch: dict[str, Any]) -> float:
    """Labelled positions over all positions the full head scores (SFT: ``labels``; DPO: completion mask)."""
    mask = batch["labels"][:, 1:] != -100 if "labels" in batch else batch["completion_mask"][:, 1:].bool()
    return float(mask.sum()) / mask.numel()


def step_seconds(trainer: Any, batch: dict[str, Any], compact: bool) -> float:
    """Process CPU seconds per thread of one ``training_step`` (forward + backward)."""
    import contextlib

    import torch

    from cotdistill.methods.trl_fused_head import compact_fused_head

    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop, which is not run here
    context = compact_fused_head() if compact else contextlib.nullcontext()
    start = time.process_time()
    with context:
        trainer.training_step(trainer.model, dict(batch))
    elapsed = (time.process_time() - start) / torch.get_num_threads()
    trainer.model.zero_grad(set_to_none=True)
    return elapsed


def measure(trainer: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One trainer's row: median step seconds with every position and with labelled positions only."""
    batch = one_batch(trainer)
    times: dict[str, list[float]] = {"full": [], "compact": []}
    for mode in ("full", "compact"):
        step_seconds(trainer, batch, mode == "compact")  # warm-up
    for _ in range(args.steps):
        for mode in ("full", "compact"):
            times[mode].append(step_seconds(trainer, batch, mode == "compact"))
    full, compact = statistics.median(times["full"]), statistics.median(times["compact"])
    return {
        "batch_shape": list(batch["input_ids"].shape),
        "labelled_share": round(labelled_share(batch), 3),
        "full_s": round(full, 2),
        "compact_s": round(compact, 2),
        "speedup": round(full / compact, 2),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "loadavg_1min_end": round(os.getloadavg()[0], 1),
        "times_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
    }


def write(result: dict[str, Any], args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    earlier = RESULTS / "trl_fused_head.json"
    if earlier.exists():
        kept = json.loads(earlier.read_text(encoding="utf-8")).get("rows", {})
        result["rows"] = {**{k: v for k, v in kept.items() if k not in result["rows"]}, **result["rows"]}
    result["machine"] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": args.threads,
        "loadavg_1min_end": round(os.getloadavg()[0], 1),
    }
    (RESULTS / "trl_fused_head.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# TRL trainer steps on CPU: fused LM head over every position vs labelled positions only",
        "",
        f"Model `{result['model']}` with a LoRA adapter (r 8), {result['precision']}; ReDis rows "
        "(rule generation from generated List Functions and 1D-ARC tasks). One fixed batch per trainer; "
        "median of `steps` `training_step` calls (forward + backward; DPO also runs its reference) "
        "per mode, alternating, after a warm-up of each. Process CPU seconds per torch thread "
        f"({args.threads} thread(s), {os.cpu_count()} CPUs; the load average is the 1-minute figure when "
        "the trainer's row was done: the machine was shared, which the CPU-time measure absorbs).",
        "",
        "| trainer | batch (rows x tokens; DPO: chosen and rejected rows) | labelled share of positions | every position (s) | labelled only (s) | speed-up | steps | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        rows_, tokens = row["batch_shape"]
        lines.append(
            f"| {name} | {rows_} x {tokens} | {100 * row['labelled_share']:.1f}% | {row['full_s']} | "
            f"{row['compact_s']} | {row['speedup']}x | {row.get('steps', '')} | {row.get('loadavg_1min_end', '')} |"
        )
    lines += [
        "",
        "`labelled only` is what cotdistill's ReDis and GRPO training run "
        "(`cotdistill.methods.trl_fused_head.compact_fused_head`); `every position` is TRL's own CPU path.",
    ]
    (RESULTS / "trl_fused_head.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def precision_text(model: str) -> str:
    from cotdistill.methods.redis.train import ReDisTrainConfig
    from cotdistill.methods.training_args import training_precision
    from cotdistill.models import StudentConfig, load_student

    resolved = training_precision(ReDisTrainConfig().stage("sft"), load_student(StudentConfig(model=model)).model)
    return f"{resolved.precision.value} ({resolved.reason})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trainers", nargs="+", choices=("sft", "dpo"), default=["sft", "dpo"])
    args = parser.parse_args()
    import torch

    from cotdistill.models.pull import cached_path

    torch.set_num_threads(args.threads)
    args.model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    result = {"model": args.model, "precision": precision_text(args.model), "rows": {}}
    with tempfile.TemporaryDirectory() as out:
        for name, trainer in trainers(args, Path(out)):
            result["rows"][name] = measure(trainer, args)
            print(name, result["rows"][name], flush=True)
            write(result, args)  # after each trainer: a later one that fails loses nothing
            del trainer


if __name__ == "__main__":
    main()
