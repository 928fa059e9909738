"""GPU benchmark (one CUDA GPU, <= 8 minutes): SFT bf16 throughput and MFU, plain and under accelerate, plus eval generation.

Needs a CUDA GPU with bf16; without one it stops at once with a clear message (nothing is
measured on a CPU). For SmolLM2-135M-Instruct and Gemma-3-270M (``cotdistill models pull
smollm2-135m-instruct`` / ``gemma3-270m`` first; a model not pulled is skipped and said so):

* SFT with cotdistill's trainer, ``precision: auto`` (bf16 on the GPU), full fine-tuning, in
  three launch modes: ``plain`` (this process), ``deepspeed_zero2`` and ``fsdp``
  (``accelerate launch --num_processes 1`` with a ZeRO-2 / FSDP config written to a temporary
  directory; DeepSpeed needs ``pip install "cotdistill[gpu]"``, and is skipped, said so, without it);
  non-padding tokens/s and MFU against the bf16 matmul peak measured here (8192x8192);
* evaluation generation (``Student.generate``, greedy, batched) in tokens/s, bf16 (the default)
  and fp32.

    python benchmarks/bench_gpu.py [--steps 30] [--batch-size 16]

Writes benchmarks/results/gpu_throughput.json and .md. Each SFT measurement runs in its own
process (``--worker``), so the launch modes do not share GPU state.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

RESULTS = Path(__file__).parent / "results"
MODELS = ("smollm2-135m-instruct", "gemma3-270m")
MODES = ("plain", "deepspeed_zero2", "fsdp")

ACCELERATE_CONFIGS = {
    "deepspeed_zero2": {
        "distributed_type": "DEEPSPEED",
        "mixed_precision": "bf16",
        "num_processes": 1,
        "num_machines": 1,
        "deepspeed_config": {"zero_stage": 2, "offload_optimizer_device": "none", "gradient_accumulation_steps": 1},
    },
    "fsdp": {
        "distributed_type": "FSDP",
        "mixed_precision": "bf16",
        "num_processes": 1,
        "num_machines": 1,
        "fsdp_config": {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_reshard_after_forward": True,
        },
    },
}


def require_cuda() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (none is visible here); run it on a machine with one")
    if not torch.cuda.is_bf16_supported():
        raise SystemExit(f"bench_gpu.py needs a GPU with bf16; {torch.cuda.get_device_name()} has none")


def matmul_peak_bf16(size: int = 8192, repeats: int = 20) -> float:
    """Best bf16 matmul rate of this GPU in FLOP/s."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    best = 0.0
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        torch.cuda.synchronize()
        best = max(best, repeats * 2 * size**3 / (time.perf_counter() - start))
    return best


def worker(args: argparse.Namespace) -> None:
    """One SFT measurement (this process may be under ``accelerate launch``); writes ``args.out``."""
    from bench_sft import StepClock, mixed_cot
    from cotdistill.methods import TrainConfig, TrainData
    from cotdistill.methods.sft import SFT, SFTMethodConfig
    from cotdistill.methods.student_trainer import StudentTrainer
    from cotdistill.models import StudentConfig, load_student

    examples = mixed_cot(64)
    student = load_student(StudentConfig(model=args.model))
    params = sum(p.numel() for p in student.model.parameters())
    rows = SFT().build_rows(student, TrainData(examples), SFTMethodConfig(), TrainConfig())
    train = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, progress=False, logging_steps=1000)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = StudentTrainer(student, rows, train, tmp)
        trainer.args.include_num_input_tokens_seen = "non_padding"
        clock = StepClock()
        trainer.add_callback(clock)
        trainer.train()
    measured = clock.rate(skip=3)  # on a GPU the wall clock is the measure
    result = {"tokens_per_s": measured["tokens_per_s_wall"], "tokens": measured["tokens"],
              "seconds": measured["seconds"], "parameters": params,
              "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
              "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30}  # fmt: skip
    if trainer.accelerator.is_main_process:
        Path(args.out).write_text(json.dumps(result))


def generation(model: str, prompts: int, new_tokens: int) -> dict:
    """Greedy batched evaluation generation in tokens/s, default precision (bf16) and fp32."""
    from bench_sft import mixed_cot
    from cotdistill.models import StudentConfig, load_student
    from cotdistill.tasks import get_task

    student = load_student(StudentConfig(model=model))
    student.model.to("cuda")
    questions = [
        student.prompt(e.question, get_task(e.domain).answer_instruction) for e in mixed_cot(prompts)[:prompts]
    ]
    out = {}
    for precision in ("auto", "fp32"):
        student.generate(questions[:8], max_new_tokens=8, precision=precision, progress=False)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        texts = student.generate(
            questions, max_new_tokens=new_tokens, batch_size=64, precision=precision, progress=False
        )
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens = sum(len(student.tokenizer(t[0], add_special_tokens=False)["input_ids"]) for t in texts)
        out["default" if precision == "auto" else precision] = {"tokens_per_s": tokens / seconds, "seconds": seconds}
    out["default_speedup_over_fp32"] = out["default"]["tokens_per_s"] / out["fp32"]["tokens_per_s"]
    return out


def launch(mode: str, model: str, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"{model}-{mode}.json"
    script = [str(Path(__file__).resolve()), "--worker", "--model", model, "--out", str(out)]
    script += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    if mode == "plain":
        command = [sys.executable, *script]
    else:
        config = tmp / f"{mode}.yaml"
        config.write_text(yaml.safe_dump(ACCELERATE_CONFIGS[mode]))
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), *script]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.worker_timeout)
    if done.returncode or not out.exists():
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]}
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per measurement (3 warm-up)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=256, help="evaluation generation prompts")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--worker-timeout", type=int, default=100, help="seconds one SFT measurement may take")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    require_cuda()
    if args.worker:
        worker(args)
        return
    from cotdistill.models.pull import cached_path

    peak = matmul_peak_bf16()
    results: dict = {"gpu": torch.cuda.get_device_name(), "matmul_peak_tflops_bf16": peak / 1e12,
                     "steps": args.steps, "batch_size": args.batch_size, "models": {}}  # fmt: skip
    deepspeed = shutil.which("deepspeed") is not None or _importable("deepspeed")
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            if cached_path(model) is None:
                results["models"][model] = {"skipped": f"not pulled (cotdistill models pull {model})"}
                continue
            entry: dict = {}
            for mode in MODES:
                if mode == "deepspeed_zero2" and not deepspeed:
                    entry[mode] = {"skipped": 'deepspeed is not installed (pip install "cotdistill[gpu]")'}
                    continue
                entry[mode] = launch(mode, model, args, Path(tmp))
                if "tokens_per_s" in entry[mode]:
                    entry[mode]["mfu_bf16_peak"] = 6 * entry[mode]["parameters"] * entry[mode]["tokens_per_s"] / peak
            entry["generation"] = generation(model, args.prompts, args.new_tokens)
            results["models"][model] = entry
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "gpu_throughput.md").write_text(render(results))
    print(render(results))


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def render(r: dict) -> str:
    lines = [
        "# GPU throughput",
        "",
        f"{r['gpu']}; measured bf16 matmul peak {r['matmul_peak_tflops_bf16']:.1f} TFLOP/s; SFT: batch size "
        f"{r['batch_size']}, {r['steps']} steps (the first 3 untimed), full fine-tuning, precision auto.",
        "",
        "| model | mode | tokens/s | MFU (bf16 peak) | peak memory GiB | note |",
        "|---|---|---|---|---|---|",
    ]
    for model, entry in r["models"].items():
        if "skipped" in entry:
            lines.append(f"| {model} | - | - | - | - | {entry['skipped']} |")
            continue
        for mode in MODES:
            e = entry[mode]
            if "tokens_per_s" in e:
                lines.append(
                    f"| {model} | {mode} | {e['tokens_per_s']:.0f} | {100 * e['mfu_bf16_peak']:.1f}% "
                    f"| {e['max_memory_gib']:.1f} | {e['precision']} |"
                )
            else:
                lines.append(f"| {model} | {mode} | - | - | - | {e.get('skipped') or e.get('error')} |")
    lines += ["", "| model | generation tokens/s (default) | fp32 | speed-up |", "|---|---|---|---|"]
    for model, entry in r["models"].items():
        if "generation" in entry:
            g = entry["generation"]
            lines.append(
                f"| {model} | {g['default']['tokens_per_s']:.0f} | {g['fp32']['tokens_per_s']:.0f} "
                f"| {g['default_speedup_over_fp32']:.2f}x |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
