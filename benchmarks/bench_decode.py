"""The decode loop (``models.decode``, rows leave the batch as they end) against ``transformers``' ``generate``.

Same model (SmolLM2-135M-Instruct when pulled, else the tiny preset), same prompts (ReDis rule
applications: each generated task's true and perturbed rules applied to its seen inputs, in the
student's chat prompt, primed with ``Output:``), greedy, bf16 autocast where the CPU has it, the
same batches (longest first). Both run side by side in this process, alternating, and must give
the same ids. Records wall seconds per run and the batch sizes.

    python benchmarks/bench_decode.py [--prompts 128] [--max-new-tokens 48] [--batch-sizes 32 128]

Writes benchmarks/results/decode.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from cotdistill.methods.redis.prompts import OUTPUT_PREFIX, apply_prompt
from cotdistill.models import StudentConfig, load_student
from cotdistill.models.generation import Sampling, left_pad, longest_first
from cotdistill.models.pull import cached_path
from cotdistill.precision import autocast, resolve_precision
from cotdistill.tasks.inductive import get_domain

RESULTS = Path(__file__).parent / "results"


def apply_prompts(student, count: int) -> list[list[int]]:
    """Token ids of ``count`` rule applications (true and perturbed List Functions rules)."""
    domain, rng, prompts = get_domain("list_functions"), random.Random(0), []
    while len(prompts) < count:
        task = domain.sample_task(rng, domain.n_seen, domain.n_test, None)
        for rule in (task.rule, domain.perturb(task, rng)):
            for pair in task.train:
                text = student.prompt(apply_prompt(rule.text, pair.input)) + student.completion(OUTPUT_PREFIX)
                prompts.append(student.encode_prompt(text))
    return prompts[:count]


def run(student, prompts, batch_size: int, max_new_tokens: int, engine: bool, precision) -> tuple[float, list]:
    """Wall seconds and new ids (cut at the stop ids) over longest-first batches."""
    eng = student.engine
    config = eng.config(Sampling(max_new_tokens=max_new_tokens))
    out = []
    start = time.perf_counter()
    with torch.no_grad(), autocast(precision, eng.device):
        for batch in longest_first([len(p) for p in prompts], batch_size):
            ids = [prompts[i] for i in batch]
            if engine:
                out += eng.token_ids(ids, config)
            else:
                out += reference_ids(eng, ids, config)
    return time.perf_counter() - start, out


def reference_ids(eng, batch, config) -> list[list[int]]:
    """``model.generate`` on the left-padded batch, new ids cut at the first stop id."""
    input_ids, mask = left_pad(batch, eng.tokenizer.pad_token_id, eng.device)
    width = input_ids.shape[1]
    rows = eng.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)[:, width:].tolist()
    stops = set(config.eos_token_id)
    return [row[: next((k for k, t in enumerate(row) if t in stops), len(row))] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = "smollm2-135m-instruct" if cached_path("smollm2-135m-instruct") else "tiny"
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    args = parser.parse_args()
    student = load_student(StudentConfig(model=args.model))
    student.model.eval()
    precision = resolve_precision("auto", student.model, student.engine.device, purpose="generate")
    prompts = apply_prompts(student, args.prompts)
    run(student, prompts[:8], 8, 4, True, precision)  # warm-up
    rows = []
    for batch_size in args.batch_sizes:
        reference_s, reference = run(student, prompts, batch_size, args.max_new_tokens, False, precision)
        engine_s, ours = run(student, prompts, batch_size, args.max_new_tokens, True, precision)
        same = sum(a == b for a, b in zip(ours, reference)) / len(prompts)
        lengths = sorted(len(r) for r in ours)
        rows.append({"batch_size": batch_size, "transformers_generate_s": reference_s, "decode_s": engine_s,
                     "speedup": reference_s / engine_s, "identical_outputs": same,
                     "new_tokens_median": lengths[len(lengths) // 2], "new_tokens_max": lengths[-1]})  # fmt: skip
    result = {"model": args.model, "prompts": args.prompts, "max_new_tokens": args.max_new_tokens,
              "threads": torch.get_num_threads(), "precision": f"{precision.precision.value} ({precision.reason})", "rows": rows}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decode.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Decode loop vs transformers' generate (ReDis rule applications)",
        "",
        f"Model `{args.model}`, {args.prompts} prompts, greedy, max_new_tokens={args.max_new_tokens}, "
        f"{result['threads']} torch threads, {result['precision']}. Same longest-first batches, run side by side.",
        "",
        "| batch size | generate (s) | decode (s) | speed-up | identical outputs | new tokens median / max |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch_size']} | {r['transformers_generate_s']:.1f} | {r['decode_s']:.1f} | {r['speedup']:.2f}x "
            f"| {r['identical_outputs']:.0%} | {r['new_tokens_median']} / {r['new_tokens_max']} |"
        )
    (RESULTS / "decode.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
