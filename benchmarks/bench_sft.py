"""SFT training throughput: cotdistill's SFT trainer vs plain TRL ``SFTTrainer`` defaults, one run.

Same model (SmolLM2-135M-Instruct when pulled, else the tiny preset), same mixed-length CoT data
(oracle rationales from several task families), same batch size, same number of steps, full
fine-tuning in fp32. Throughput counts non-padding tokens per second; MFU is
``6 * parameters * tokens/s`` over the machine's measured fp32 matmul peak.

    python benchmarks/bench_sft.py [--model smollm2-135m-instruct|tiny] [--steps 6] [--batch-size 8]

Writes benchmarks/results/sft_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SFTConfig, SFTTrainer, rationale_target
from cotdistill.models import StudentConfig, load_student
from cotdistill.models.pull import cached_path
from cotdistill.tasks import get_task

RESULTS = Path(__file__).parent / "results"
DOMAINS = ("arith_shopping", "arith_cooking", "coin_flip", "last_letter", "chained_arithmetic")


def matmul_peak(size: int = 1024, seconds: float = 3.0) -> float:
    """Best fp32 matmul rate in FLOP/s over a few timed repetitions."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - start))
    return best


class StepClock(TrainerCallback):
    """Records (time, non-padding tokens seen) at the end of every step."""

    def __init__(self):
        self.marks: list[tuple[float, int]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    def rate(self, skip: int = 1) -> tuple[float, int, float]:
        """tokens/s after ``skip`` warm-up steps, tokens counted, seconds."""
        (t0, n0), (t1, n1) = self.marks[skip - 1], self.marks[-1]
        return (n1 - n0) / (t1 - t0), n1 - n0, t1 - t0


def mixed_cot(n_per_domain: int) -> list:
    examples = []
    for domain in DOMAINS:
        try:
            task = get_task(domain)
        except KeyError:
            continue
        examples += task.examples("train", n_per_domain, 0)
    return examples


def run_cotdistill(student_cfg, examples, corpus, args, out) -> StepClock:
    student = load_student(student_cfg, corpus)
    rows = SFT().build_rows(student, TrainData(examples), SFTConfig(), TrainConfig())
    train = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, progress=False, logging_steps=1000)
    trainer = SFTTrainer(student, rows, train, out)
    trainer.args.include_num_input_tokens_seen = "non_padding"
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    return clock


TRL_VARIANTS = {
    # TRL's SFTConfig defaults: on this CPU they mean bf16 autocast and gradient checkpointing
    "trl_defaults": {},
    # the same trainer with the precision and memory settings cotdistill uses here
    "trl_fp32": {"bf16": False, "gradient_checkpointing": False},
}


def run_trl(student_cfg, examples, corpus, args, out, overrides: dict) -> StepClock:
    from datasets import Dataset
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer as TRLTrainer

    student = load_student(student_cfg, corpus)
    rows = [
        {
            "prompt": student.prompt(e.question, get_task(e.domain).answer_instruction),
            "completion": student.completion(rationale_target(e)),
        }
        for e in examples
    ]
    config = TRLConfig(
        output_dir=str(out),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        report_to="none",
        logging_steps=1000,
        save_strategy="no",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        use_cpu=not torch.accelerator.is_available(),
        **overrides,
    )
    trainer = TRLTrainer(
        model=student.model, args=config, train_dataset=Dataset.from_list(rows), processing_class=student.tokenizer
    )
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per trainer (the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--per-domain", type=int, default=24, help="examples per task family")
    args = parser.parse_args()

    examples = mixed_cot(args.per_domain)
    corpus = [f"{e.question} {e.rationale}" for e in examples]
    student_cfg = StudentConfig(model=args.model)
    probe = load_student(student_cfg, corpus)
    params = sum(p.numel() for p in probe.model.parameters())
    lengths = [
        len(probe.encode_prompt(probe.example_prompt(e))) + len(probe.encode_completion(e.rationale)) for e in examples
    ]
    del probe
    peak = matmul_peak()
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_cotdistill(student_cfg, examples, corpus, args, Path(tmp) / "ours")
        clocks = {"cotdistill": ours}
        for name, overrides in TRL_VARIANTS.items():
            clocks[name] = run_trl(student_cfg, examples, corpus, args, Path(tmp) / name, overrides)
    results = {"model": args.model, "parameters": params, "batch_size": args.batch_size, "steps_timed": args.steps - 1,
               "examples": len(examples), "row_tokens_min_mean_max": [min(lengths), sum(lengths) / len(lengths), max(lengths)],
               "matmul_peak_gflops": peak / 1e9, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "machine": platform.processor() or platform.machine(),
               "load_average_1min": os.getloadavg()[0]}  # fmt: skip
    for name, clock in clocks.items():
        rate, tokens, seconds = clock.rate()
        results[name] = {"tokens_per_s": rate, "tokens": tokens, "seconds": seconds, "mfu": 6 * params * rate / peak}
    for name in TRL_VARIANTS:
        results[f"speedup_over_{name}"] = results["cotdistill"]["tokens_per_s"] / results[name]["tokens_per_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sft_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "sft_throughput.md").write_text(render(results))
    print(render(results))


def render(r: dict) -> str:
    lines = [
        "# SFT training throughput",
        "",
        f"Model `{r['model']}` ({r['parameters'] / 1e6:.1f}M parameters), full fine-tuning, fp32, batch size "
        f"{r['batch_size']}, {r['steps_timed']} timed steps after one warm-up step, {r['examples']} mixed-length CoT rows "
        f"(tokens per row min/mean/max {r['row_tokens_min_mean_max'][0]}/{r['row_tokens_min_mean_max'][1]:.0f}/"
        f"{r['row_tokens_min_mean_max'][2]}).",
        f"Machine: {r['cpu_count']} CPU cores, {r['torch_threads']} torch threads, measured fp32 matmul peak "
        f"{r['matmul_peak_gflops']:.1f} GFLOP/s, 1-minute load average {r['load_average_1min']:.1f} at the end.",
        "",
        "| trainer | non-padding tokens/s | MFU |",
        "|---|---|---|",
    ]
    for name in ("cotdistill", *TRL_VARIANTS):
        lines.append(f"| {name} | {r[name]['tokens_per_s']:.1f} | {100 * r[name]['mfu']:.1f}% |")
    lines += [
        "",
        f"Speed-up of cotdistill over TRL defaults: **{r['speedup_over_trl_defaults']:.2f}x**; over TRL with "
        f"fp32 and no gradient checkpointing: **{r['speedup_over_trl_fp32']:.2f}x**.",
        "",
        "TRL's `SFTConfig` defaults are `bf16=True` and `gradient_checkpointing=True`; on a CPU without native",
        "bf16 matrix units the autocast makes every matmul slow, which is most of the first ratio. The second",
        "ratio is what length-grouped batches (little padding) and cotdistill's collator give over TRL's own.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
