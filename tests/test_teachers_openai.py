"""The openai teacher against a fake OpenAI-compatible server on 127.0.0.1 (stdlib http.server).

Faults: 500s, 429 with Retry-After, hangs past the timeout, malformed JSON, 4xx, refused
connections. Each is retried (or not) and reported as an error result; the batch goes on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cotdistill.teachers import CompletionRequest, TeacherConfig, build_teacher

Reply = tuple[int, Any, float]  # (status, JSON-able payload or raw str, seconds to wait first)


def chat_reply(texts: list[str], prompt_tokens: int = 7, per_text: int = 3) -> dict:
    return {
        "choices": [{"index": i, "message": {"role": "assistant", "content": t}} for i, t in enumerate(texts)],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": per_text * len(texts),
            "total_tokens": prompt_tokens + per_text * len(texts),
        },
    }


class FakeServer:
    """A threaded HTTP server answering POSTs with ``script(path, body, call_number) -> Reply``.

    Records every request body and header, the most requests ever in flight at once and the
    TCP connections accepted (``keep_alive`` speaks HTTP/1.1, so a client may reuse them).
    """

    def __init__(
        self,
        script: Callable[[str, dict, int], Reply],
        max_requests: int = 500,
        port: int = 0,
        keep_alive: bool = False,
    ):
        self.script = script
        self.connections = 0
        self.max_requests = max_requests
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server.connections += 1

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    number = len(server.bodies)
                    if number >= server.max_requests:
                        self.send_error(503)
                        return
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    server.paths.append(self.path)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, payload, delay = server.script(self.path, body, number)
                    time.sleep(delay)
                    raw = payload if isinstance(payload, str) else json.dumps(payload)
                    data = raw.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0.05")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def teacher_for(server: FakeServer, **overrides):
    options = {"backend": "openai", "model": "fake", "base_url": server.base_url, "backoff_s": 0.01}
    options.update(max_retries=2, timeout_s=5.0)
    options.update(overrides)
    return build_teacher(TeacherConfig(**options))


def ask(key: str, n: int = 1, **kw) -> CompletionRequest:
    return CompletionRequest(key, messages=[{"role": "user", "content": key}], n=n, **kw)


def echo(path: str, body: dict, number: int) -> Reply:
    if path.endswith("/chat/completions"):
        content = body["messages"][-1]["content"]
        return 200, chat_reply([f"{content} #{i}" for i in range(body.get("n", 1))]), 0.0
    return 200, {"choices": [{"index": 0, "text": body["prompt"] + " done\nQuestion: more"}]}, 0.0


def test_chat_and_completions_payloads_usage_and_order(monkeypatch):
    monkeypatch.setenv("FAKE_KEY_ENV", "sk-test-secret")
    with FakeServer(echo) as server:
        teacher = teacher_for(server, api_key_env="FAKE_KEY_ENV", concurrency=4)
        requests = [ask(f"q{i}", max_tokens=9, temperature=0.3) for i in range(5)]
        requests.append(CompletionRequest("plain", prompt="2+2=", stop=["\nQuestion:"]))
        results = teacher.complete(requests)
    assert [r.key for r in results] == ["q0", "q1", "q2", "q3", "q4", "plain"]
    assert [r.texts for r in results[:2]] == [["q0 #0"], ["q1 #0"]]
    assert results[-1].texts == ["2+2= done"]  # trimmed at the stop string
    assert results[0].usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert all(r.latency_s > 0 for r in results)
    chat = next(b for b, p in zip(server.bodies, server.paths) if p == "/v1/chat/completions")
    assert chat["model"] == "fake" and chat["max_tokens"] == 9 and chat["temperature"] == 0.3 and "n" not in chat
    assert server.paths.count("/v1/completions") == 1
    assert all(h["Authorization"] == "Bearer sk-test-secret" for h in server.headers)
    assert "sk-test-secret" not in repr(teacher)


def test_no_key_in_env_sends_no_authorization(monkeypatch):
    monkeypatch.delenv("UNSET_KEY_ENV", raising=False)
    with FakeServer(echo) as server:
        assert teacher_for(server, api_key_env="UNSET_KEY_ENV").complete([ask("a")])[0].ok
    assert "Authorization" not in server.headers[0]


def test_n_native_split_and_servers_that_ignore_n():
    with FakeServer(echo) as server:
        native = teacher_for(server).complete([ask("a", n=3)])[0]
    assert native.texts == ["a #0", "a #1", "a #2"] and [b.get("n") for b in server.bodies] == [3]
    assert native.usage["completion_tokens"] == 9

    with FakeServer(echo) as server:
        split = teacher_for(server, native_n=False).complete([ask("a", n=3)])[0]
    assert split.ok and len(split.texts) == 3 and [b.get("n") for b in server.bodies] == [None] * 3
    assert split.usage == {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}

    def one_choice(path: str, body: dict, number: int) -> Reply:
        return 200, chat_reply([f"only {number}"]), 0.0

    with FakeServer(one_choice) as server:
        short = teacher_for(server).complete([ask("a", n=3)])[0]
    assert short.texts == ["only 0", "only 1", "only 2"] and [b.get("n") for b in server.bodies] == [3, 2, None]


def flaky(fault: str, failures: int) -> Callable[[str, dict, int], Reply]:
    """The first ``failures`` calls fail with ``fault``; later calls succeed."""

    def script(path: str, body: dict, number: int) -> Reply:
        if number < failures:
            return {
                "500": (500, {"error": "boom"}, 0.0),
                "429": (429, {"error": "slow down"}, 0.0),
                "hang": (200, chat_reply(["late"]), 1.5),
                "malformed": (200, "{not json", 0.0),
                "no_choices": (200, {"choices": []}, 0.0),
            }[fault]
        return 200, chat_reply(["ok"]), 0.0

    return script


@pytest.mark.parametrize("fault", ["500", "429", "hang", "malformed", "no_choices"])
def test_retryable_faults_are_retried_then_succeed(fault):
    with FakeServer(flaky(fault, 2)) as server:
        result = teacher_for(server, timeout_s=0.3).complete([ask("a")])[0]
    assert result.ok and result.texts == ["ok"]
    assert len(server.bodies) == 3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "HTTP 500"),
        ("hang", "timed out after 0.3s"),
        ("malformed", "malformed reply"),
        ("no_choices", "malformed reply"),
    ],
)
def test_persistent_faults_become_error_results_and_the_batch_goes_on(fault, reason):
    def script(path: str, body: dict, number: int) -> Reply:
        if body["messages"][-1]["content"] == "bad":
            return flaky(fault, 10**6)(path, body, number)
        return echo(path, body, number)

    with FakeServer(script) as server:
        results = teacher_for(server, timeout_s=0.3).complete([ask("good"), ask("bad"), ask("good2")])
    good, bad, good2 = results
    assert good.texts == ["good #0"] and good2.texts == ["good2 #0"]
    assert not bad.ok and bad.texts == [] and reason in bad.error and "gave up after 3 attempts" in bad.error
    assert sum(b["messages"][-1]["content"] == "bad" for b in server.bodies) == 3


def test_client_errors_are_not_retried():
    with FakeServer(lambda path, body, number: (400, {"error": "bad model"}, 0.0)) as server:
        result = teacher_for(server).complete([ask("a")])[0]
    assert not result.ok and result.error.startswith("HTTP 400") and "bad model" in result.error
    assert len(server.bodies) == 1


def test_refused_connection_is_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    teacher = build_teacher(
        TeacherConfig(
            backend="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", backoff_s=0.01, max_retries=1
        )
    )
    result = teacher.complete([ask("a")])[0]
    assert not result.ok and "connection error" in result.error and "gave up after 2 attempts" in result.error


def test_concurrency_is_bounded():
    def slow(path: str, body: dict, number: int) -> Reply:
        return 200, chat_reply(["x"]), 0.05

    with FakeServer(slow) as server:
        results = teacher_for(server, concurrency=3).complete([ask(f"q{i}") for i in range(12)])
    assert all(r.ok for r in results) and len(server.bodies) == 12
    assert 1 <= server.max_in_flight <= 3


def test_completions_api_refuses_messages_without_raising():
    with FakeServer(echo) as server:
        result = teacher_for(server, api="completions").complete([ask("a")])[0]
    assert not result.ok and "needs a plain prompt" in result.error and server.bodies == []
