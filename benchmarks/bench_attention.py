"""Attention forward + backward on CPU: transformers' ``sdpa`` against cotdistill's matmul attention.

SmolLM2-135M's attention shape (9 query heads over 3 key/value heads, head size 64), batch 8,
sdpa's boolean padding mask (the last 10 key positions of every row padded, as in a padded CoT
batch), bf16, for a range of sequence lengths. Both implementations run alternately in this
process, ``--repeats`` rounds, best time per round kept; process CPU seconds per thread.

    python benchmarks/bench_attention.py [--threads 1] [--repeats 3]

Writes benchmarks/results/attention.json and .md. ``cotdistill.models.short_attention`` uses
matmuls up to ``EAGER_MAX_AREA`` (q_len * kv_len) and ``sdpa`` above it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from cotdistill.models.short_attention import EAGER_MAX_AREA, matmul_attention
from cotdistill.precision import cpu_bf16_flags

RESULTS = Path(__file__).parent / "results"
BATCH, HEADS, KV_HEADS, HEAD_DIM = 8, 9, 3, 64


class _Attention(torch.nn.Module):
    is_causal = True
    num_key_value_groups = HEADS // KV_HEADS


def _inputs(length: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(length)
    shapes = [
        (BATCH, HEADS, length, HEAD_DIM),
        (BATCH, KV_HEADS, length, HEAD_DIM),
        (BATCH, KV_HEADS, length, HEAD_DIM),
    ]
    qkv = [torch.randn(s, generator=generator).bfloat16().requires_grad_() for s in shapes]
    mask = torch.ones(length, length, dtype=torch.bool).tril().expand(BATCH, 1, length, length).clone()
    mask[..., max(1, length - 10) :] = False
    mask |= torch.eye(length, dtype=torch.bool)  # every query keeps itself
    return qkv, mask


def _seconds(fn, qkv: list[torch.Tensor], mask: torch.Tensor) -> float:
    """CPU seconds per thread of one forward + backward."""
    start = time.process_time()
    fn(_Attention(), *qkv, mask).float().sum().backward()
    return (time.process_time() - start) / torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 146, 181, 256, 384, 512])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    impls = {
        "sdpa": lambda m, q, k, v, mask: sdpa_attention_forward(m, q, k, v, mask, scaling=HEAD_DIM**-0.5)[0],
        "matmul": lambda m, q, k, v, mask: matmul_attention(m, q, k, v, mask, scaling=HEAD_DIM**-0.5),
    }
    rows = []
    for length in args.lengths:
        qkv, mask = _inputs(length)
        best = dict.fromkeys(impls, float("inf"))
        for fn in impls.values():  # warm-up
            _seconds(fn, qkv, mask)
        for _ in range(args.repeats):
            for name, fn in impls.items():
                best[name] = min(best[name], _seconds(fn, qkv, mask))
        rows.append(
            {
                "length": length,
                "area": length * length,
                "sdpa_ms": 1e3 * best["sdpa"],
                "matmul_ms": 1e3 * best["matmul"],
                "matmul_speedup": best["sdpa"] / best["matmul"],
                "short_attention_uses": "matmul" if length * length <= EAGER_MAX_AREA else "sdpa",
            }
        )
        print(rows[-1], flush=True)
    results = {
        "shape": {"batch": BATCH, "heads": HEADS, "kv_heads": KV_HEADS, "head_dim": HEAD_DIM, "dtype": "bf16"},
        "threads": args.threads,
        "repeats": args.repeats,
        "eager_max_area": EAGER_MAX_AREA,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16_flags": list(cpu_bf16_flags()),
        "torch": torch.__version__,
        "load_average_1min": os.getloadavg()[0],
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "attention.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "attention.md").write_text(render(results))
    print(render(results))


def render(r: dict) -> str:
    """The .md twin of the .json (every figure comes from ``r``)."""
    s = r["shape"]
    lines = [
        "# Attention forward + backward on CPU: sdpa against matmul attention",
        "",
        f"Batch {s['batch']}, {s['heads']} query heads over {s['kv_heads']} key/value heads, head size "
        f"{s['head_dim']} (SmolLM2-135M), {s['dtype']}, boolean padding mask. {r['threads']} torch thread(s), "
        f"best of {r['repeats']} alternating rounds, CPU ms per thread. Machine: {r['cpu_count']} cores "
        f"({', '.join(r['cpu_bf16_flags']) or 'no bf16 units'}), torch {r['torch']}, 1-minute load average "
        f"{r['load_average_1min']:.1f}.",
        "",
        "| tokens | sdpa ms | matmul ms | matmul speed-up | short_attention uses |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['length']} | {row['sdpa_ms']:.1f} | {row['matmul_ms']:.1f} | {row['matmul_speedup']:.2f}x "
            f"| {row['short_attention_uses']} |"
        )
    lines += [
        "",
        f"`cotdistill.models.short_attention` computes attention with matmuls while q_len x kv_len <= "
        f"{r['eager_max_area']} and hands longer calls to `sdpa`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
