"""Where bf16 autocast starts to pay off on this CPU: fp32 vs bf16 step time of small students.

For each Llama-style student size (hidden width x layers, vocabulary 2048 like the default
recipe's tiny student) and batch size, measures the process CPU time (less sensitive than the wall clock to other processes
on a shared machine; one torch thread by default, as each parallel job of the default run has)
of one training step (forward, fp32 cross-entropy,
backward, AdamW: what the SFT trainer does) and one greedy generation call (``--new-tokens``
tokens, KV cache) in fp32 and under bf16 autocast, side by side in one process. The ratio
``fp32 time / bf16 time`` above 1 means bf16 is faster. ``precision: auto`` uses the measured
crossover (``cotdistill.precision.AUTO_BF16_MIN_HIDDEN``).

    python benchmarks/bench_precision_size.py [--rows 150] [--rounds 2]

Writes benchmarks/results/precision_size.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

RESULTS = Path(__file__).parent / "results"
SIZES = ((128, 2), (128, 4), (256, 2), (256, 4), (576, 2))
BATCHES = (16, 32)
VOCAB = 2048


def build(hidden: int, layers: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 2),
        num_key_value_heads=max(hidden // 64, 2),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()


def train_step_s(model: LlamaForCausalLM, batch: torch.Tensor, bf16: bool) -> float:
    """CPU seconds of one optimizer step (forward, fp32 loss, backward, AdamW)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    start = time.process_time()
    with autocast(bf16):
        logits = model(input_ids=batch).logits[:, :-1]
    loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.process_time() - start


@torch.no_grad()
def generate_s(model: LlamaForCausalLM, prompts: torch.Tensor, bf16: bool, new_tokens: int) -> float:
    """CPU seconds of one greedy ``generate`` call of exactly ``new_tokens`` tokens per prompt."""
    model.eval()
    start = time.process_time()
    with autocast(bf16):
        model.generate(
            prompts,
            attention_mask=torch.ones_like(prompts),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    model.train()
    return time.process_time() - start


def fastest(measure, rounds: int) -> dict[str, float]:
    """Best of ``rounds`` alternating fp32/bf16 measurements (after one warm-up of each).

    Alternating and taking the minimum keeps other processes on a shared machine from
    favouring one precision."""
    best = {"fp32": float("inf"), "bf16": float("inf")}
    for round_index in range(rounds + 1):
        for name in best:
            seconds = measure(name == "bf16")
            if round_index:
                best[name] = min(best[name], seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150, help="tokens per training row")
    parser.add_argument("--rounds", type=int, default=2, help="timed fp32/bf16 pairs per setting (best kept)")
    parser.add_argument("--prompt-tokens", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the default run trains one per core)")
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = []
    for hidden, layers in SIZES:
        model = build(hidden, layers)
        params = sum(p.numel() for p in model.parameters())
        for batch_size in BATCHES:
            generator = torch.Generator().manual_seed(0)
            batch = torch.randint(3, VOCAB, (batch_size, args.rows), generator=generator)
            prompts = batch[:, : args.prompt_tokens]
            entry = {"hidden": hidden, "layers": layers, "parameters": params, "batch": batch_size}
            train = fastest(partial(train_step_s, model, batch), args.rounds)
            generate = fastest(partial(generate_s, model, prompts, new_tokens=args.new_tokens), args.rounds)
            for name in ("fp32", "bf16"):
                entry[f"train_s_{name}"] = train[name]
                entry[f"generate_s_{name}"] = generate[name]
            entry["train_speedup_bf16"] = entry["train_s_fp32"] / entry["train_s_bf16"]
            entry["generate_speedup_bf16"] = entry["generate_s_fp32"] / entry["generate_s_bf16"]
            rows.append(entry)
            print(json.dumps(entry), flush=True)
    results = {
        "rows_tokens": args.rows,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min_before_after": [load_before, os.getloadavg()[0]],
        "cpu_bf16_flags": sorted(k for k in ("amx_bf16", "avx512_bf16") if torch.cpu.get_capabilities().get(k)),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "precision_size.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "precision_size.md").write_text(render(results))
    print(render(results))


def render(r: dict) -> str:
    lines = [
        "# fp32 vs bf16 autocast on small students",
        "",
        f"Training rows of {r['rows_tokens']} tokens; generation: {r['prompt_tokens']}-token prompts, "
        f"{r['new_tokens']} new tokens, greedy. {r['torch_threads']} torch threads, CPU bf16 flags "
        f"{', '.join(r['cpu_bf16_flags']) or 'none'}; 1-minute load average before/after "
        f"{r['load_average_1min_before_after'][0]:.1f}/{r['load_average_1min_before_after'][1]:.1f} (shared machine).",
        "Times are process CPU seconds, best of the rounds. Speed-up = fp32 time / bf16 time (above 1: bf16 is faster).",
        "",
        "| hidden | layers | params | batch | train step fp32 (s) | bf16 (s) | train speed-up | generate fp32 (s) "
        "| bf16 (s) | generate speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in r["rows"]:
        lines.append(
            f"| {e['hidden']} | {e['layers']} | {e['parameters'] / 1e6:.2f}M | {e['batch']} | {e['train_s_fp32']:.3f} "
            f"| {e['train_s_bf16']:.3f} | {e['train_speedup_bf16']:.2f}x | {e['generate_s_fp32']:.3f} "
            f"| {e['generate_s_bf16']:.3f} | {e['generate_speedup_bf16']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
