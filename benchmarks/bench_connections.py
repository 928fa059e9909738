"""Connection pooling of the ``openai`` teacher: one client per run vs a fresh client per batch.

Starts its own OpenAI-compatible stub server on 127.0.0.1 (stdlib ``ThreadingHTTPServer``,
HTTP/1.1 keep-alive, a fixed chat completion after ``--latency-ms``) and talks to nothing
else. Each round sends ``--batches`` batches of ``--batch-size`` requests at ``--concurrency``:

* ``fresh client per batch``: a new teacher (so a new ``httpx.AsyncClient``, event loop and TCP
  connections) for every batch and closed after it, which is what every batch cost before
  clients were kept per run;
* ``one client per run``: one teacher for all batches (pooled keep-alive connections).

Rounds alternate the two modes so that load changes on a shared machine hit both. Reported:
requests/s, seconds per batch (median), and TCP connections the server accepted.
``--connect-ms`` adds a delay before the first reply on each new connection, standing in for a
TLS handshake or a distant server (0 by default: plain loopback TCP).

    python benchmarks/bench_connections.py [--batches 20] [--batch-size 32] [--concurrency 32] [--rounds 3]

Writes ``benchmarks/results/connections.json`` and ``connections.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cotdistill.teachers import CompletionRequest, TeacherConfig, build_teacher

RESULTS = Path(__file__).parent / "results"
REPLY = json.dumps(
    {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "2 + 2 = 4. The answer is 4."}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22},
    }
).encode()


class StubServer:
    """Answers every POST with ``REPLY`` on 127.0.0.1; counts accepted connections."""

    def __init__(self, latency_s: float, connect_s: float):
        self.connections = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with stub.lock:
                    stub.connections += 1
                self.fresh = True

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(latency_s + (connect_s if self.fresh else 0.0))
                self.fresh = False
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(REPLY)))
                self.end_headers()
                self.wfile.write(REPLY)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 128
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def batches(count: int, size: int) -> list[list[CompletionRequest]]:
    return [
        [
            CompletionRequest(f"b{b}-r{r}", messages=[{"role": "user", "content": f"What is {r} + {b}?"}])
            for r in range(size)
        ]
        for b in range(count)
    ]


def run_mode(mode: str, cfg: TeacherConfig, work: list[list[CompletionRequest]], server: StubServer) -> dict[str, Any]:
    """Send every batch in ``mode``; returns seconds, per-batch seconds and connections opened."""
    before = server.connections
    per_batch: list[float] = []
    start = time.perf_counter()
    shared = build_teacher(cfg) if mode == "pooled" else None
    for batch in work:
        teacher = shared or build_teacher(cfg)
        began = time.perf_counter()
        results = teacher.complete(batch)
        per_batch.append(time.perf_counter() - began)
        if teacher is not shared:
            teacher.close()
        failed = [r.error for r in results if r.error]
        if failed:
            raise RuntimeError(f"{len(failed)} requests failed: {failed[0]}")
    if shared is not None:
        shared.close()
    return {"seconds": time.perf_counter() - start, "per_batch": per_batch, "connections": server.connections - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=2.0, help="server time per request")
    parser.add_argument("--connect-ms", type=float, default=0.0, help="extra delay on each new connection")
    parser.add_argument("--tag", default="", help="suffix of the results files (connections<tag>.json)")
    args = parser.parse_args()

    server = StubServer(args.latency_ms / 1000, args.connect_ms / 1000)
    cfg = TeacherConfig(backend="openai", model="stub", base_url=server.base_url, concurrency=args.concurrency)
    work = batches(args.batches, args.batch_size)
    runs: dict[str, list[dict[str, Any]]] = {"fresh": [], "pooled": []}
    try:
        run_mode("pooled", cfg, work[:2], server)  # warm-up: imports, first connections
        for _ in range(args.rounds):
            for mode in ("fresh", "pooled"):
                runs[mode].append(run_mode(mode, cfg, work, server))
    finally:
        server.close()

    requests = args.batches * args.batch_size
    summary = {
        mode: {
            "requests_per_s": round(requests * len(rounds) / sum(r["seconds"] for r in rounds), 1),
            "median_batch_s": round(statistics.median(s for r in rounds for s in r["per_batch"]), 4),
            "connections_per_round": [r["connections"] for r in rounds],
            "seconds_per_round": [round(r["seconds"], 3) for r in rounds],
        }
        for mode, rounds in runs.items()
    }
    speedup = round(summary["pooled"]["requests_per_s"] / summary["fresh"]["requests_per_s"], 3)
    machine = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "python": platform.python_version(),
        "note": "2 CPU cores shared with other jobs; client and server run on the same cores",
    }
    settings = {k: v for k, v in vars(args).items() if k != "tag"}
    result = {"machine": machine, "settings": settings, "summary": summary, "speedup": speedup}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"connections{args.tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    labels = {"fresh": "fresh client per batch", "pooled": "one client per run"}
    lines = [
        "# openai teacher: one pooled client per run vs a fresh client per batch",
        "",
        f"Machine: {json.dumps(machine)}",
        "",
        f"Settings: {json.dumps(settings)}; stub server on 127.0.0.1 (HTTP/1.1 keep-alive).",
        "",
        "| mode | requests/s | median s per batch | TCP connections per round | s per round |",
        "|---|---|---|---|---|",
    ]
    for mode, entry in summary.items():
        lines.append(
            f"| {labels[mode]} | {entry['requests_per_s']} | {entry['median_batch_s']} | "
            f"{entry['connections_per_round']} | {entry['seconds_per_round']} |"
        )
    lines += ["", f"Throughput ratio (pooled / fresh): **{speedup}x**.", ""]
    (RESULTS / f"connections{args.tag}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
