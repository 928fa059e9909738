"""Evaluation throughput: batched vs per-example greedy generation on the same student.

Both modes run ``Student.generate`` (KV cache; the batched mode left-pads ``--batch-size``
prompts per forward pass, the per-example mode uses batch size 1) on the same prompts with
the same ``max_new_tokens``. Reports questions/s and generated tokens/s for each, the speed-up,
and how many greedy outputs are identical between the two modes (left padding must not change
answers). The model is SmolLM2-135M-Instruct when it has been pulled
(``cotdistill models pull smollm2-135m-instruct``), else the ``tiny`` preset.

    python benchmarks/bench_eval.py [--model auto|tiny|smollm2-135m-instruct|DIR] [--prompts 64]

Writes ``benchmarks/results/eval_throughput.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from cotdistill.models.pull import cached_path
from cotdistill.models.student import Student
from cotdistill.models.tiny import TinyConfig, build_tiny_model, train_tokenizer
from cotdistill.tasks import get_task

RESULTS = Path(__file__).parent / "results"


def load_model(name: str, questions: list[str]) -> tuple[Student, str]:
    """The student to benchmark and a description of it."""
    if name in ("auto", "smollm2-135m-instruct"):
        path = cached_path("smollm2-135m-instruct")
        if path is not None:
            name = str(path)
        elif name != "auto":
            raise SystemExit("smollm2-135m-instruct is not pulled: run `cotdistill models pull smollm2-135m-instruct`")
        else:
            name = "tiny"
    if name == "tiny":
        tokenizer = train_tokenizer(questions, vocab_size=512)
        config = TinyConfig()
        model = build_tiny_model(config, tokenizer)
        return Student(model, tokenizer, use_chat_template=False), f"tiny preset ({_params(model)} parameters)"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(name)
    return Student(model, tokenizer), f"{name} ({_params(model)} parameters)"


def _params(model: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M"


def timed(student: Student, prompts: list[str], batch_size: int, max_new_tokens: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    outputs = student.generate(prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False)
    return time.perf_counter() - start, [o[0] for o in outputs]


def count_tokens(student: Student, texts: list[str]) -> int:
    return sum(len(student.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="auto", help="auto | tiny | smollm2-135m-instruct | a HF directory")
    parser.add_argument("--prompts", type=int, default=64, help="questions to answer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    task = get_task("arith_shopping")
    examples = task.examples("test", args.prompts, seed=0)
    student, description = load_model(
        args.model, [e.question for e in examples] + [e.rationale or "" for e in examples]
    )
    prompts = [student.prompt(e.question, task.answer_instruction) for e in examples]
    timed(student, prompts[:4], args.batch_size, 4)  # warm-up

    batched_s, batched = timed(student, prompts, args.batch_size, args.max_new_tokens)
    single_s, single = timed(student, prompts, 1, args.max_new_tokens)
    batched_tokens, single_tokens = count_tokens(student, batched), count_tokens(student, single)
    result = {
        "model": description,
        "device": str(student.device),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "batched": {
            "seconds": batched_s,
            "questions_per_s": len(prompts) / batched_s,
            "tokens_per_s": batched_tokens / batched_s,
        },
        "per_example": {
            "seconds": single_s,
            "questions_per_s": len(prompts) / single_s,
            "tokens_per_s": single_tokens / single_s,
        },
        "speedup_questions": single_s / batched_s,
        "identical_outputs": sum(a == b for a, b in zip(batched, single)) / len(prompts),
        "target_speedup": 4.0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Evaluation throughput: batched vs per-example generation",
        "",
        f"Model: {description}; device {result['device']}, {result['torch_threads']} torch threads; "
        f"{len(prompts)} arith_shopping prompts, greedy, max_new_tokens={args.max_new_tokens}.",
        "",
        "| mode | batch size | seconds | questions/s | tokens/s |",
        "|---|---|---|---|---|",
        f"| batched | {args.batch_size} | {batched_s:.2f} | {result['batched']['questions_per_s']:.2f} | {result['batched']['tokens_per_s']:.1f} |",
        f"| per-example | 1 | {single_s:.2f} | {result['per_example']['questions_per_s']:.2f} | {result['per_example']['tokens_per_s']:.1f} |",
        "",
        f"Speed-up (questions/s): **{result['speedup_questions']:.1f}x** (target >= 4x). "
        f"Identical greedy outputs in both modes: {100 * result['identical_outputs']:.0f}%.",
    ]
    (args.out / "eval_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
