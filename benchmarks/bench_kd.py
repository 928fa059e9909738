"""Training step time and peak memory of KD vs SFT on the same student and the same batch, in one run.

Student: SmolLM2-135M-Instruct depth-pruned to every third decoder layer (``keep_layers``);
teacher: the full model, frozen (``--model tiny`` uses a 4-layer tiny teacher and a 2-layer
student instead, for machines without the weights). Every mode runs the real trainer code path
(``training_step`` = forward, loss, backward; then the AdamW step) on one fixed micro-batch of
``--rows`` oracle CoT rows, each on its own copy of the same initial student. Modes:

* ``sft``: cross-entropy only (``StudentTrainer``);
* ``kd-online``: the teacher runs on the batch, full-vocabulary forward KL (``KDTrainer``);
* ``kd-topk``: forward KL against the offline top-k cache (built first; its build time is reported).

Step times are interleaved step by step (machine load hits all modes alike): the median over
``--steps`` steps after warm-up. Peak memory: on CUDA ``max_memory_allocated`` per mode; on a CPU
each mode runs again in a fresh process and reports how far its peak resident set grew over the
steps above the resident set after loading (Linux: the peak mark is reset after loading, so a
brief peak while loading checkpoints does not hide the steps; ``setup`` is reported too).

    python benchmarks/bench_kd.py [--model smollm2|tiny] [--rows 8] [--steps 5] [--bf16]

Writes ``benchmarks/results/kd_overhead.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from cotdistill.methods.base import TrainConfig, TrainData
from cotdistill.methods.data import IGNORE_INDEX, Collator
from cotdistill.methods.kd.config import KDConfig, KDTeacherConfig
from cotdistill.methods.kd.method import KD
from cotdistill.methods.kd.trainer import KDTrainer
from cotdistill.methods.sft import SFTMethodConfig
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models import Student, StudentConfig, TinyConfig, load_student
from cotdistill.models.prune import keep_decoder_layers
from cotdistill.models.pull import cached_path
from cotdistill.tasks import get_task

RESULTS = Path(__file__).parent / "results"
MODES = ("sft", "kd-online", "kd-topk")


def make_data(rows: int) -> TrainData:
    per_task = -(-rows // 3)
    tasks = ("arith_shopping", "arith_cooking", "coin_flip")
    return TrainData([e for t in tasks for e in get_task(t).examples("train", per_task, seed=0)][:rows])


def load_models(name: str, data: TrainData, tmp: Path) -> tuple[Student, str, str]:
    """(pruned student, teacher directory or preset, description)."""
    if name == "smollm2":
        if cached_path("smollm2-135m-instruct") is None:
            raise SystemExit("smollm2-135m-instruct is not pulled: run `cotdistill models pull smollm2-135m-instruct`")
        teacher = "smollm2-135m-instruct"
        student = load_student(StudentConfig(model=teacher, keep_layers=list(range(2, 30, 3))))
    else:
        corpus = [e.question + " " + (e.rationale or "") for e in data.labelled]
        full = load_student(StudentConfig(tiny=TinyConfig(num_layers=4), use_chat_template=False), corpus)
        full.save(tmp / "teacher")
        teacher = str(tmp / "teacher")
        student = Student(copy.deepcopy(full.model), full.tokenizer, None, False)
        keep_decoder_layers(student.model, [1, 3])
    params = sum(p.numel() for p in student.model.parameters()) / 1e6
    layers = student.model.config.num_hidden_layers
    return student, teacher, f"student {name} pruned to {layers} layers ({params:.1f}M parameters), teacher {teacher}"


def mode_config(mode: str, teacher: str, cache_dir: Path) -> KDConfig | SFTMethodConfig:
    if mode == "sft":
        return SFTMethodConfig()
    source = "online" if mode == "kd-online" else "topk"
    return KDConfig(teacher=KDTeacherConfig(model=teacher), source=source, top_k=20, cache_dir=str(cache_dir))


def build_trainer(mode: str, base: Student, teacher: str, data: TrainData, train: TrainConfig, out: Path):
    """A trainer for ``mode`` on its own copy of ``base``, the fixed batch, and the seconds its setup took."""
    student = Student(copy.deepcopy(base.model), base.tokenizer, None, base.use_chat_template)
    config = mode_config(mode, teacher, out / "cache")
    method = KD()
    rows = method.build_rows(student, data, config, train)
    started = time.perf_counter()
    if mode == "sft":
        trainer: Any = StudentTrainer(student, rows, train, out / mode, method_config=config)
    else:
        source = method.teacher_source(student, data, train, config)
        trainer = KDTrainer(student, rows, train, out / mode, method_config=config, teacher_source=source)
    setup_s = time.perf_counter() - started
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    return trainer, Collator(student.tokenizer.pad_token_id)(rows[: train.batch_size]), setup_s


def step(trainer: Any, batch: dict, bf16: bool) -> float:
    """One optimizer step on ``batch``; returns its wall time in seconds."""
    tokens = int((batch["labels"] != IGNORE_INDEX).sum())
    autocast = torch.autocast(batch["input_ids"].device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    start = time.perf_counter()
    with autocast:
        trainer.training_step(trainer.model, batch, num_items_in_batch=tokens)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def rss_mb(field: str = "VmHWM") -> float:
    """This process's resident set (``VmRSS``) or its peak since the last ``reset_peak_rss`` (``VmHWM``), MB.

    Without ``/proc`` (not Linux): the lifetime peak from ``getrusage``, whatever ``field``."""
    if PROC_STATUS.exists():
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current resident set (Linux ``clear_refs`` 5); False if it cannot."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def memory_of_mode(mode: str, model: str, rows: int, bf16: bool, threads: int) -> dict[str, float]:
    """Resident set after setup and its peak growth (MB) over two steps of ``mode``, in this (fresh) process.

    The peak mark is reset after loading, so the growth is the steps' own (activations, gradients,
    optimizer states, the teacher's logits), not what loading the checkpoints briefly took."""
    if threads:
        torch.set_num_threads(threads)
    data = make_data(rows)
    with tempfile.TemporaryDirectory() as tmp:
        base, teacher, _ = load_models(model, data, Path(tmp))
        train = TrainConfig(batch_size=rows, max_length=256, progress=False)
        trainer, batch, _ = build_trainer(mode, base, teacher, data, train, Path(tmp))
        setup = rss_mb("VmRSS")
        if not reset_peak_rss():
            setup = rss_mb()
        for _ in range(2):
            step(trainer, batch, bf16)
        return {"setup_mb": setup, "step_peak_growth_mb": rss_mb() - setup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2", help="smollm2 | tiny")
    parser.add_argument("--rows", type=int, default=8, help="rows in the batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = make_data(args.rows)
    train = TrainConfig(batch_size=args.rows, max_length=256, progress=False, bf16=False)
    with tempfile.TemporaryDirectory() as tmp:
        base, teacher, description = load_models(args.model, data, Path(tmp))
        built = {mode: build_trainer(mode, base, teacher, data, train, Path(tmp)) for mode in MODES}
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(args.warmup + args.steps):
            for mode in MODES:
                elapsed = step(built[mode][0], built[mode][1], args.bf16)
                if i >= args.warmup:
                    times[mode].append(elapsed)
    cuda = torch.cuda.is_available()
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        memory = {
            mode: pool.apply(memory_of_mode, (mode, args.model, args.rows, args.bf16, args.threads)) for mode in MODES
        }

    medians = {mode: statistics.median(values) for mode, values in times.items()}
    batch = built["sft"][1]
    result = {
        "model": description,
        "device": "cuda" if cuda else "cpu",
        "bf16_autocast": args.bf16,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "machine": platform.processor() or platform.machine(),
        "batch_shape": list(batch["input_ids"].shape),
        "completion_tokens": int((batch["labels"] != IGNORE_INDEX).sum()),
        "steps": args.steps,
        "median_step_s": medians,
        "ratio_vs_sft": {mode: medians[mode] / medians["sft"] for mode in MODES},
        "setup_s": {mode: built[mode][2] for mode in MODES},
        "memory_mb": memory,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kd_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# KD training step vs SFT",
        "",
        f"Model: {description}; {result['device']}, bf16 autocast {'on' if args.bf16 else 'off'}, "
        f"{result['torch_threads']} torch threads, {result['cpu_count']} CPUs (1-minute load average "
        f"{result['load_average_1m']:.1f} at the end: the machine was shared).",
        f"One fixed batch of shape {result['batch_shape']} ({result['completion_tokens']} completion tokens); "
        f"median of {args.steps} interleaved steps after {args.warmup} warm-up.",
        "",
        "| mode | median step (ms) | vs sft | setup (s) | peak memory growth over steps (MB) |",
        "|---|---|---|---|---|",
        *(
            f"| {mode} | {1000 * medians[mode]:.0f} | {result['ratio_vs_sft'][mode]:.2f}x | "
            f"{result['setup_s'][mode]:.1f} | {memory[mode]['step_peak_growth_mb']:.0f} |"
            for mode in MODES
        ),
        "",
        "Setup: loading the teacher (online) or loading it and scoring the batch's rows into the top-k "
        "cache (topk). Memory on a CPU is how far the process's peak resident set grows over two steps "
        "above the resident set after loading (the kernel's peak mark reset in between), in a fresh process "
        "per mode (resident set after loading: "
        + ", ".join(f"{m} {memory[m]['setup_mb']:.0f} MB" for m in MODES)
        + ").",
    ]
    (args.out / "kd_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
