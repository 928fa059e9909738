"""Profile SFT training steps with ``torch.profiler``: which operators the time goes to.

Runs cotdistill's SFT trainer (``precision`` as given, default bf16) on SmolLM2-135M-Instruct
when pulled (else the tiny preset), profiles ``--steps`` optimizer steps after one warm-up step,
and appends the top operators by self CPU time to ``benchmarks/results/sft_profile.md`` under
``--label`` (e.g. ``before`` / ``after`` a change), so the file keeps both tables.

    python benchmarks/profile_sft_step.py --label after [--precision bf16] [--master-weights] [--steps 2] [--rows 15]

``--master-weights`` profiles bf16 weights with fp32 master copies (``train.master_weights``) instead of autocast.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import TrainerCallback

from bench_sft import mixed_cot  # the same CoT rows as the throughput benchmark (benchmarks/ is on sys.path)
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models import StudentConfig, load_student
from cotdistill.models.pull import cached_path

RESULTS = Path(__file__).parent / "results"


class ProfileSteps(TrainerCallback):
    """Starts the profiler after the warm-up step and stops it after ``steps`` more."""

    def __init__(self, steps: int):
        self.steps = steps
        self.profiler = profile(activities=[ProfilerActivity.CPU])

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self.profiler.__enter__()
        elif state.global_step == 1 + self.steps:
            self.profiler.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--label", required=True, help="heading of this table (e.g. before, after)")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--master-weights", action="store_true", help="bf16 weights with fp32 masters, no autocast")
    parser.add_argument("--steps", type=int, default=2, help="profiled steps (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rows", type=int, default=15, help="operators listed")
    args = parser.parse_args()

    examples = mixed_cot(8)
    student = load_student(StudentConfig(model=args.model), [f"{e.question} {e.rationale}" for e in examples])
    rows = SFT().build_rows(student, TrainData(examples), SFTMethodConfig(), TrainConfig())
    train = TrainConfig(
        max_steps=args.steps + 1,
        batch_size=args.batch_size,
        precision=args.precision,
        master_weights=args.master_weights,
        progress=False,
        logging_steps=1000,
    )
    callback = ProfileSteps(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = StudentTrainer(student, rows, train, tmp)
        trainer.add_callback(callback)
        trainer.train()
    table = callback.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    attention = getattr(student.model.config, "_attn_implementation", "?")
    weights = ", bf16 weights with fp32 master copies (no autocast)" if args.master_weights else ""
    text = (
        f"\n## {args.label}\n\nModel `{args.model}`, precision {args.precision}{weights}, attention `{attention}`, batch size "
        f"{args.batch_size}, {args.steps} profiled steps, {torch.get_num_threads()} torch threads, 1-minute load "
        f"average {os.getloadavg()[0]:.1f} (shared machine).\n\n```\n{table}\n```\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "sft_profile.md"
    if not path.exists():
        path.write_text("# Profile of SFT training steps (top operators by self CPU time)\n")
    with path.open("a") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
