"""CPU memory allocator and training speed: glibc's malloc against jemalloc that keeps freed pages.

On CPU, PyTorch takes every tensor from the C allocator. glibc serves requests over 32 MB (the
logits, their gradients, a layer's activations at long sequences) with a fresh ``mmap`` and
returns them with ``munmap`` when freed, so each training step page-faults and zeroes gigabytes
again; that is system time, not matmul. jemalloc with ``dirty_decay_ms:-1,muzzy_decay_ms:-1``
keeps freed pages for reuse. Two workloads on SmolLM2-135M-Instruct (the tiny preset when it is
not pulled), full fine-tuning, batch 8:

* ``short_rows``: cotdistill's SFT trainer at default precision on the mixed CoT rows of
  ``bench_sft`` (about 100-200 tokens a row);
* ``long_rows``: a plain loop (bf16 autocast, the model's loss, AdamW, gradient checkpointing)
  on rows of ``--long-tokens`` tokens, the length of ReDis prompts.

Each under two allocators, each pair a fresh process, measured one after the other in this run:

* ``glibc``: the default allocator;
* ``jemalloc_retain``: ``LD_PRELOAD`` of ``libjemalloc.so.2`` with the setting above
  (``apt-get install libjemalloc2``; the row is left out when the library is absent).

Each row has wall-clock tokens/s after a warm-up step, and for the long rows system CPU seconds
and minor page faults per step; peak resident memory for both.

    python benchmarks/bench_allocator.py [--steps 8] [--long-steps 4] [--long-tokens 768]

Writes benchmarks/results/allocator.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
RETAIN = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """This process: both workloads; rates after the first step."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_sft import mixed_cot, run_cotdistill
    from cotdistill.models import StudentConfig, load_student
    from cotdistill.models.pull import cached_path

    model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    examples = mixed_cot(args.per_domain)
    corpus = [e.question + " " + (e.rationale or "") for e in examples]
    with tempfile.TemporaryDirectory() as out:
        clock = run_cotdistill(StudentConfig(model=model), examples, corpus, args, Path(out), "auto")
    rate = clock.rate()
    short = {"tokens_per_s_wall": rate["tokens_per_s_wall"], "seconds_per_step": rate["seconds"] / (args.steps - 1)}

    torch.manual_seed(0)
    student = load_student(StudentConfig(model=model), corpus)
    net = student.model.float().train()
    net.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5)
    ids = torch.randint(0, len(student.tokenizer), (args.batch_size, args.long_tokens))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = net(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(args.long_steps):
        step()
    seconds = (time.perf_counter() - started) / args.long_steps
    after = resource.getrusage(resource.RUSAGE_SELF)
    long = {
        "tokens_per_s_wall": args.batch_size * args.long_tokens / seconds,
        "seconds_per_step": seconds,
        "system_seconds_per_step": (after.ru_stime - before.ru_stime) / args.long_steps,
        "minor_faults_per_step": (after.ru_minflt - before.ru_minflt) / args.long_steps,
    }
    peak = {"peak_rss_gb": after.ru_maxrss / 2**20, "model": model}
    return {"short_rows": short, "long_rows": long, "process": peak}


def run_row(env: dict[str, str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    command = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    command += ["--per-domain", str(args.per_domain), "--long-steps", str(args.long_steps)]
    command += ["--long-tokens", str(args.long_tokens)]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(result: dict) -> str:
    rows = result["rows"]
    lines = [
        "# CPU allocator and SFT speed",
        "",
        f"Machine: {result['machine']}. Model: {rows['glibc']['process']['model']}, full fine-tuning, batch "
        f"{result['batch_size']}; short rows: cotdistill SFT at default precision, {result['steps']} steps; long rows: "
        f"{result['long_tokens']} tokens a row, {result['long_steps']} steps; each allocator a fresh process, "
        "measured one after the other in one run (`python benchmarks/bench_allocator.py`); rates after a warm-up step.",
        "",
        "| allocator | short rows tok/s | vs glibc | long rows tok/s | vs glibc | long: system s/step | "
        "long: minor faults/step | peak RSS GB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = rows["glibc"]
    for name, row in rows.items():
        short, long = row["short_rows"], row["long_rows"]
        lines.append(
            f"| {name} | {short['tokens_per_s_wall']:.0f} | "
            f"{short['tokens_per_s_wall'] / base['short_rows']['tokens_per_s_wall']:.2f}x | "
            f"{long['tokens_per_s_wall']:.0f} | {long['tokens_per_s_wall'] / base['long_rows']['tokens_per_s_wall']:.2f}x | "
            f"{long['system_seconds_per_step']:.2f} | {long['minor_faults_per_step']:.0f} | {row['process']['peak_rss_gb']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--per-domain", type=int, default=24)
    parser.add_argument("--long-steps", type=int, default=4, help="timed steps of the long-row loop")
    parser.add_argument("--long-tokens", type=int, default=768, help="tokens per long row")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    rows = {"glibc": run_row({}, args)}
    if Path(JEMALLOC).exists():
        rows["jemalloc_retain"] = run_row({"LD_PRELOAD": JEMALLOC, "MALLOC_CONF": RETAIN}, args)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "long_steps": args.long_steps,
        "long_tokens": args.long_tokens,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "allocator.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "allocator.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
