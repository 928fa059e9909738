"""Generation throughput at the default precision vs fp32: evaluation (``Student.generate``) and the ``hf`` teacher.

Same model (SmolLM2-135M-Instruct when pulled, else the tiny preset), same prompts (arith_shopping
test questions with the evaluation prompt), greedy, same ``max_new_tokens`` and batch size; each
generator runs once at ``precision: auto`` and once at ``fp32``, side by side in this process.
Throughput is generated tokens per process CPU second per thread (what the run gets with its
threads to itself; the wall-clock rate on a shared machine is recorded too). Also records how
many greedy outputs are identical between the two precisions.

    python benchmarks/bench_generation_precision.py [--prompts 32] [--max-new-tokens 48] [--batch-size 32]

Writes benchmarks/results/generation_precision.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from functools import partial
from pathlib import Path

import torch

from cotdistill.models import StudentConfig, load_student
from cotdistill.models.pull import cached_path
from cotdistill.precision import cpu_bf16_flags, resolve_precision
from cotdistill.tasks import get_task
from cotdistill.teachers import CompletionRequest, TeacherConfig
from cotdistill.teachers.hf_local import HFTeacher

RESULTS = Path(__file__).parent / "results"


def timed(generate) -> tuple[list[str], dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    texts = generate()
    cpu_s = (time.process_time() - cpu) / torch.get_num_threads()
    return texts, {"cpu_seconds_per_thread": cpu_s, "seconds": time.perf_counter() - wall}


def first_samples(student, prompts: list[str], args: argparse.Namespace, precision: str) -> list[str]:
    outputs = student.generate(
        prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, precision=precision, progress=False
    )
    return [o[0] for o in outputs]


def rates(tokens: int, clock: dict[str, float]) -> dict[str, float]:
    return {"tokens": tokens, "tokens_per_s": tokens / clock["cpu_seconds_per_thread"],
            "tokens_per_s_wall": tokens / clock["seconds"], **clock}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    task = get_task("arith_shopping")
    examples = task.examples("test", args.prompts, seed=0)
    student = load_student(StudentConfig(model=args.model), [f"{e.question} {e.rationale}" for e in examples])
    prompts = [student.prompt(e.question, task.answer_instruction) for e in examples]
    count = lambda texts: sum(len(student.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)  # noqa: E731
    default = resolve_precision("auto", student.model, "cpu", purpose="generate")
    results: dict = {"model": args.model, "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
                     "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
                     "cpu_bf16_flags": list(cpu_bf16_flags()), "default_precision": default.precision.value,
                     "default_precision_reason": default.reason}  # fmt: skip
    outputs: dict[str, dict[str, list[str]]] = {"evaluation": {}, "hf_teacher": {}}
    student.generate(prompts[:2], max_new_tokens=4, progress=False)  # warm-up
    for precision in ("auto", "fp32"):
        texts, clock = timed(partial(first_samples, student, prompts, args, precision))
        outputs["evaluation"][precision] = texts
        results[f"evaluation_{'default' if precision == 'auto' else precision}"] = rates(count(texts), clock)
    if args.model != "tiny":
        requests = [
            CompletionRequest(key=str(i), prompt=p, max_tokens=args.max_new_tokens) for i, p in enumerate(prompts)
        ]
        for precision in ("auto", "fp32"):
            cfg = TeacherConfig(backend="hf", model=args.model, batch_size=args.batch_size, precision=precision)
            teacher = HFTeacher(cfg)
            teacher.complete(requests[:2])  # warm-up
            done, clock = timed(partial(teacher.complete, requests))
            texts = [r.texts[0] if r.texts else "" for r in done]
            outputs["hf_teacher"][precision] = texts
            results[f"hf_teacher_{'default' if precision == 'auto' else precision}"] = rates(count(texts), clock)
            del teacher
    for generator, by_precision in outputs.items():
        if by_precision:
            a, b = by_precision["auto"], by_precision["fp32"]
            results[f"{generator}_identical_outputs"] = sum(x == y for x, y in zip(a, b)) / len(a)
            results[f"{generator}_default_speedup_over_fp32"] = (
                results[f"{generator}_default"]["tokens_per_s"] / results[f"{generator}_fp32"]["tokens_per_s"]
            )
    results["load_average_1min_before_after"] = [load_before, os.getloadavg()[0]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "generation_precision.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "generation_precision.md").write_text(render(results))
    print(render(results))


def render(r: dict) -> str:
    """The .md twin of the .json (every figure comes from ``r``)."""
    lines = [
        "# Generation throughput: default precision vs fp32",
        "",
        f"Model `{r['model']}`, {r['prompts']} arith_shopping prompts, greedy, max_new_tokens={r['max_new_tokens']}, "
        f"batch size {r['batch_size']}, {r['torch_threads']} torch threads, CPU bf16 flags "
        f"{', '.join(r['cpu_bf16_flags']) or 'none'}. Default precision: **{r['default_precision']}** "
        f"({r['default_precision_reason']}). 1-minute load average before/after "
        f"{r['load_average_1min_before_after'][0]:.1f}/{r['load_average_1min_before_after'][1]:.1f} (shared machine).",
        "Tokens/s are per process CPU second per thread; the wall-clock rate is in the last column.",
        "",
        "| generator | precision | generated tokens/s | wall-clock tokens/s |",
        "|---|---|---|---|",
    ]
    for generator in ("evaluation", "hf_teacher"):
        for name in ("default", "fp32"):
            e = r.get(f"{generator}_{name}")
            if e:
                lines.append(f"| {generator} | {name} | {e['tokens_per_s']:.1f} | {e['tokens_per_s_wall']:.1f} |")
    lines.append("")
    for generator in ("evaluation", "hf_teacher"):
        if f"{generator}_default_speedup_over_fp32" in r:
            lines.append(
                f"- {generator}: default over fp32 **{r[f'{generator}_default_speedup_over_fp32']:.2f}x** "
                f"(goal >= 1.6x for evaluation); identical greedy outputs "
                f"{100 * r[f'{generator}_identical_outputs']:.0f}%."
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
