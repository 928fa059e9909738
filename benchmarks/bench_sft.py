"""SFT training throughput: cotdistill (default precision and fp32), TRL ``SFTTrainer`` and a plain loop, one run.

Same model (SmolLM2-135M-Instruct when pulled, else the tiny preset), same mixed-length CoT data
(oracle rationales from several task families), same batch size, same number of steps, full
fine-tuning. Rows, all measured side by side in this process:

* ``cotdistill_default``: cotdistill's SFT trainer with ``precision: auto`` (what a user gets);
* ``cotdistill_bf16_master_weights``: the same trainer with ``precision: bf16`` and
  ``master_weights: true`` (bf16 weights, fp32 master copies in the optimizer, no autocast);
* ``cotdistill_default_sdpa``: the default with transformers' ``sdpa`` attention instead of
  cotdistill's short-sequence attention (``cotdistill.models.short_attention``): the change's
  before/after;
* ``cotdistill_fp32``: the same trainer with ``precision: fp32``;
* ``trl_same_precision``: TRL's ``SFTTrainer`` at the default's resolved precision, no
  gradient checkpointing, transformers' default ``sdpa`` attention (what a TRL user gets);
* ``torch_loop_same_precision``: a plain PyTorch loop (autocast, the model's own loss, AdamW) on
  the same length-sorted batches: the reference for what the hardware gives.

Every row is measured ``--rounds`` times, in reversed order on odd rounds, and averaged.
Throughput counts non-padding tokens per second; MFU is ``6 * parameters * tokens/s`` over the
bf16 and the fp32 matmul peaks, both measured here (2048x2048 matmul, this process's threads).

    python benchmarks/bench_sft.py [--model smollm2-135m-instruct|tiny] [--steps 6] [--batch-size 8] [--rounds 3]

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
from cotdistill.methods.data import Collator, LengthGroupedSampler
from cotdistill.methods.sft import SFT, SFTMethodConfig, rationale_target
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models import StudentConfig, load_student
from cotdistill.models.pull import cached_path
from cotdistill.precision import ResolvedPrecision, autocast, cpu_bf16_flags, resolve_precision, trainer_flags
from cotdistill.tasks import get_task

RESULTS = Path(__file__).parent / "results"
DOMAINS = ("arith_shopping", "arith_cooking", "coin_flip", "last_letter", "chained_arithmetic")


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 4.0) -> dict[str, float]:
    """Best ``size`` x ``size`` matmul rate in ``dtype`` (FLOP/s per process CPU second per thread, and wall)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = {"cpu": 0.0, "wall": 0.0}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        wall, cpu = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        cpu_s = (time.process_time() - cpu) / torch.get_num_threads()
        best["cpu"] = max(best["cpu"], 2 * size**3 / max(cpu_s, 1e-9))
        best["wall"] = max(best["wall"], 2 * size**3 / (time.perf_counter() - wall))
    return best


class StepClock(TrainerCallback):
    """Records (wall time, process CPU time, non-padding tokens seen) at the end of every step."""

    def __init__(self):
        self.marks: list[tuple[float, float, int]] = []

    def mark(self, tokens: int) -> None:
        self.marks.append((time.perf_counter(), time.process_time(), tokens))

    def on_step_end(self, args, state, control, **kwargs):
        self.mark(int(state.num_input_tokens_seen))

    def rate(self, skip: int = 1) -> dict[str, float]:
        """Tokens/s after ``skip`` warm-up steps: by the wall clock, and by process CPU time per thread.

        The CPU-time rate is what the run would reach with its threads to itself; on a shared
        machine the wall-clock rate also counts the time other processes held the cores.
        """
        (w0, c0, n0), (w1, c1, n1) = self.marks[skip - 1], self.marks[-1]
        cpu_s = (c1 - c0) / torch.get_num_threads()
        return {"tokens_per_s": (n1 - n0) / cpu_s, "tokens_per_s_wall": (n1 - n0) / (w1 - w0),
                "tokens": n1 - n0, "seconds": w1 - w0, "cpu_seconds_per_thread": cpu_s}  # fmt: skip


def mixed_cot(n_per_domain: int) -> list:
    examples = []
    for domain in DOMAINS:
        try:
            task = get_task(domain)
        except KeyError:
            continue
        examples += task.examples("train", n_per_domain, 0)
    return examples


def run_cotdistill(
    student_cfg,
    examples,
    corpus,
    args,
    out,
    precision: str,
    *,
    master_weights: bool = False,
    attention: str = "",
) -> StepClock:
    student = load_student(student_cfg, corpus)
    if attention:
        student.model.set_attn_implementation(attention)
    rows = SFT().build_rows(student, TrainData(examples), SFTMethodConfig(), TrainConfig())
    train = TrainConfig(
        max_steps=args.steps,
        batch_size=args.batch_size,
        progress=False,
        logging_steps=1000,
        precision=precision,
        master_weights=master_weights,
    )
    trainer = StudentTrainer(student, rows, train, out)
    trainer.args.include_num_input_tokens_seen = "non_padding"
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    return clock


def run_trl(student_cfg, examples, corpus, args, out, precision: ResolvedPrecision) -> StepClock:
    from datasets import Dataset
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer as TRLTrainer

    student = load_student(student_cfg, corpus)
    student.model.set_attn_implementation("sdpa")
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
        gradient_checkpointing=False,
        **trainer_flags(precision),
    )
    trainer = TRLTrainer(
        model=student.model, args=config, train_dataset=Dataset.from_list(rows), processing_class=student.tokenizer
    )
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    return clock


def run_torch_loop(student_cfg, examples, corpus, args, precision: ResolvedPrecision) -> StepClock:
    """Plain loop: length-sorted padded batches, autocast forward with the model's own loss, AdamW."""
    student = load_student(student_cfg, corpus)
    rows = SFT().build_rows(student, TrainData(examples), SFTMethodConfig(), TrainConfig())
    sampler = LengthGroupedSampler([len(r["input_ids"]) for r in rows], args.batch_size, seed=0)
    order = list(sampler)
    collate = Collator(student.tokenizer.pad_token_id)
    model = student.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    clock, seen = StepClock(), 0
    for step in range(args.steps):
        start = step * args.batch_size % len(order)
        batch = collate([rows[i] for i in order[start : start + args.batch_size]])
        with autocast(precision, "cpu"):
            loss = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
            ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen += int(batch["attention_mask"].sum())
        clock.mark(seen)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per trainer (the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--per-domain", type=int, default=24, help="examples per task family")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times every row is measured, in reversed order on odd rounds"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    examples = mixed_cot(args.per_domain)
    corpus = [f"{e.question} {e.rationale}" for e in examples]
    student_cfg = StudentConfig(model=args.model)
    probe = load_student(student_cfg, corpus)
    params = sum(p.numel() for p in probe.model.parameters())
    default = resolve_precision("auto", probe.model, "cpu")
    lengths = [
        len(probe.encode_prompt(probe.prompt(e.question, get_task(e.domain).answer_instruction)))
        + len(probe.encode_completion(e.rationale))
        for e in examples
    ]
    del probe
    measured = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    peaks = {name: m["cpu"] for name, m in measured.items()}
    runners = {
        "cotdistill_default": lambda out: run_cotdistill(student_cfg, examples, corpus, args, out, "auto"),
        "cotdistill_bf16_master_weights": lambda out: run_cotdistill(
            student_cfg, examples, corpus, args, out, "bf16", master_weights=True
        ),
        "cotdistill_default_sdpa": lambda out: run_cotdistill(
            student_cfg, examples, corpus, args, out, "auto", attention="sdpa"
        ),
        "cotdistill_fp32": lambda out: run_cotdistill(student_cfg, examples, corpus, args, out, "fp32"),
        "trl_same_precision": lambda out: run_trl(student_cfg, examples, corpus, args, out, default),
        "torch_loop_same_precision": lambda out: run_torch_loop(student_cfg, examples, corpus, args, default),
    }
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(runners) if r % 2 == 0 else list(reversed(runners))
            for name in order:
                rounds[name].append(runners[name](Path(tmp) / f"{name}-{r}").rate())
    results = {"model": args.model, "parameters": params, "batch_size": args.batch_size, "steps_timed": args.steps - 1,
               "default_precision": default.precision.value, "default_precision_reason": default.reason,
               "examples": len(examples), "row_tokens_min_mean_max": [min(lengths), sum(lengths) / len(lengths), max(lengths)],
               "matmul_peak_gflops_bf16": peaks["bf16"] / 1e9, "matmul_peak_gflops_fp32": peaks["fp32"] / 1e9,
               "matmul_peak_gflops_wall_bf16": measured["bf16"]["wall"] / 1e9,
               "matmul_peak_gflops_wall_fp32": measured["fp32"]["wall"] / 1e9,
               "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "cpu_bf16_flags": list(cpu_bf16_flags()), "machine": platform.processor() or platform.machine(),
               "load_average_1min_before_after": [load_before, os.getloadavg()[0]], "rounds": args.rounds}  # fmt: skip
    for name, measured_rounds in rounds.items():
        entry = {key: sum(m[key] for m in measured_rounds) / len(measured_rounds) for key in measured_rounds[0]}
        entry["tokens_per_s_rounds"] = [m["tokens_per_s"] for m in measured_rounds]
        flops = 6 * params * entry["tokens_per_s"]
        results[name] = {**entry, "mfu_bf16_peak": flops / peaks["bf16"], "mfu_fp32_peak": flops / peaks["fp32"]}
    default_rate = results["cotdistill_default"]["tokens_per_s"]
    for name in ROWS[1:]:
        results[f"default_speedup_over_{name}"] = default_rate / results[name]["tokens_per_s"]
    results["mfu_bf16_peak"] = results["cotdistill_default"]["mfu_bf16_peak"]
    results["mfu_fp32_peak"] = results["cotdistill_default"]["mfu_fp32_peak"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sft_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "sft_throughput.md").write_text(render(results))
    print(render(results))


ROWS = (
    "cotdistill_default",
    "cotdistill_bf16_master_weights",
    "cotdistill_default_sdpa",
    "cotdistill_fp32",
    "trl_same_precision",
    "torch_loop_same_precision",
)


def render(r: dict) -> str:
    """The .md twin of the .json (every figure comes from ``r``)."""
    low, mean, high = r["row_tokens_min_mean_max"]
    lines = [
        "# SFT training throughput",
        "",
        f"Model `{r['model']}` ({r['parameters'] / 1e6:.1f}M parameters), full fine-tuning, batch size "
        f"{r['batch_size']}, {r['steps_timed']} timed steps after one warm-up step, {r['examples']} mixed-length CoT "
        f"rows (tokens per row min/mean/max {low}/{mean:.0f}/{high}). Default precision: "
        f"**{r['default_precision']}** ({r['default_precision_reason']}).",
        f"Machine: {r['cpu_count']} CPU cores (flags: {', '.join(r['cpu_bf16_flags']) or 'no bf16 units'}), "
        f"{r['torch_threads']} torch threads; measured 2048x2048 matmul peaks: bf16 "
        f"{r['matmul_peak_gflops_bf16']:.1f} GFLOP/s, fp32 {r['matmul_peak_gflops_fp32']:.1f} GFLOP/s. "
        f"1-minute load average before/after: {r['load_average_1min_before_after'][0]:.1f}/"
        f"{r['load_average_1min_before_after'][1]:.1f} (the machine was shared with other work).",
        "",
        "Rates and peaks are per process CPU second per thread (what the run gets with its threads to itself);",
        "the wall-clock rate on the shared machine is in the last column.",
        "",
        "| trainer | non-padding tokens/s | MFU vs bf16 peak | MFU vs fp32 peak | wall-clock tokens/s |",
        "|---|---|---|---|---|",
    ]
    for name in ROWS:
        e = r[name]
        lines.append(
            f"| {name} | {e['tokens_per_s']:.1f} | {100 * e['mfu_bf16_peak']:.1f}% | {100 * e['mfu_fp32_peak']:.1f}% "
            f"| {e['tokens_per_s_wall']:.1f} |"
        )
    lines += [
        "",
        f"Default over cotdistill fp32: **{r['default_speedup_over_cotdistill_fp32']:.2f}x** (goal >= 2.5x); over TRL "
        f"at the same precision: **{r['default_speedup_over_trl_same_precision']:.2f}x** (goal >= 1.5x); over the plain "
        f"loop: **{r['default_speedup_over_torch_loop_same_precision']:.2f}x**. Default MFU against the measured bf16 "
        f"peak: **{100 * r['mfu_bf16_peak']:.1f}%** (goal >= 50%). Over bf16 weights with fp32 master copies "
        f"(`master_weights: true`): **{r['default_speedup_over_cotdistill_bf16_master_weights']:.2f}x**. "
        f"Short-sequence attention over `sdpa` (both at the default precision): **{r['default_speedup_over_cotdistill_default_sdpa']:.2f}x**.",
        "",
        f"Each row is the mean of {r['rounds']} measurements, taken in the order above on even rounds and "
        "reversed on odd ones (so that a drift in the machine's speed does not favour one row); "
        "`tokens_per_s_rounds` in the .json has each.",
        "",
        "MFU counts 6 x parameters FLOPs per non-padding token (forward + backward) and ignores attention",
        "FLOPs and the fp32 work (optimizer, norms, loss) that mixed precision leaves in fp32.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
