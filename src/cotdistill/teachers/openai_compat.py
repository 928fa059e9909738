"""The ``openai`` teacher: any OpenAI-compatible server (vLLM, llama.cpp's server, OpenAI).

One ``httpx.AsyncClient`` per teacher serves every batch of the run (connection pooling and
keep-alive), on an event loop in a background thread; ``close()`` ends both. Requests go out
concurrently with at most ``cfg.concurrency`` in flight. Each HTTP call is retried with
exponential backoff and jitter on 429/408/5xx, connection errors, timeouts, malformed replies
and empty completions (``Retry-After`` is honoured up to ``backoff_max_s``); other 4xx fail at
once. 401/403/404 mean every request will fail: the batch is cancelled and
``TeacherRefusedError`` raised with the server's message. Any other request that still fails
comes back with ``error`` set.

The API key is read from the environment variable named by ``cfg.api_key_env`` and only ever
placed in the Authorization header; credentials inside ``base_url`` become HTTP basic auth.
Neither reaches an error message or a log line (``cotdistill.redaction``).

``n > 1``: with ``native_n`` the API's ``n`` is used (servers that return fewer choices are
asked again for the rest); without it, ``n`` single-sample requests are issued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from cotdistill.redaction import redact_text, register_secret, strip_url_credentials, url_credentials
from cotdistill.stopping import trim_at_stop
from cotdistill.teachers.base import (
    CompletionRequest,
    CompletionResult,
    TeacherConfig,
    TeacherRefusedError,
    check_top_p,
    register_teacher,
)

T = TypeVar("T")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))
REFUSED_STATUS = frozenset({401, 403, 404})
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


@dataclass
class OpenAITeacherConfig:
    """The ``openai`` backend's settings (``TeacherConfig.options``); the key itself is never one."""

    model: str = field(default="", metadata={"help": "the served model name"})
    base_url: str = field(
        default="http://127.0.0.1:8000/v1", metadata={"help": "the server's OpenAI-compatible base URL (ends in /v1)"}
    )
    api: Literal["auto", "chat", "completions"] = field(
        default="auto", metadata={"help": "endpoint; auto uses chat for messages and completions for plain prompts"}
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "name of the environment variable holding the API key (read, never saved)"},
    )
    concurrency: int = field(default=8, metadata={"help": "requests in flight at once"})
    timeout_s: float = field(default=120.0, metadata={"help": "seconds before one attempt is abandoned"})
    max_retries: int = field(
        default=4, metadata={"help": "retries on 429/5xx/connection errors/timeouts/malformed replies"}
    )
    backoff_s: float = field(default=0.5, metadata={"help": "first retry delay; doubles per retry, jittered"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "longest delay between retries"})
    native_n: bool = field(
        default=True, metadata={"help": "send n>1 as the API's `n`; false issues n separate requests"}
    )
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass when temperature > 0"})
    seed: int = field(default=0, metadata={"help": "sent as `seed` when not 0"})

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("backend 'openai' needs `model` (the served model name)")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("timeout_s", "backoff_max_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {self.backoff_s}")
        check_top_p(self.top_p)
        if not ENV_NAME.fullmatch(self.api_key_env):
            # never echo the value: it is often the key itself, typed into the wrong field
            raise ValueError(
                "api_key_env must be the name of an environment variable (letters, digits and '_', "
                "e.g. OPENAI_API_KEY), not the key; put the key in that variable"
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = strip_url_credentials(self.base_url)
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {shown!r}")


class _Failure(Exception):
    """One HTTP attempt failed; ``retry`` says whether another attempt may help, ``refused``
    that none will (the server refused the client)."""

    def __init__(self, reason: str, *, retry: bool, retry_after: float | None = None, refused: bool = False):
        super().__init__(reason)
        self.reason, self.retry, self.retry_after, self.refused = reason, retry, retry_after, refused


class _LoopThread:
    """An asyncio event loop running in a daemon thread; ``run(coro)`` blocks for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="openai-teacher", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class OpenAITeacher:
    """Completes requests against ``cfg.base_url`` with model ``cfg.model`` (``cfg``: its ``OpenAITeacherConfig``)."""

    def __init__(self, config: TeacherConfig):
        self.cfg = cfg = config.section(OpenAITeacherConfig)
        self.id = f"openai:{cfg.model}"
        self.base_url = strip_url_credentials(cfg.base_url).rstrip("/") + "/"
        self._headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(cfg.api_key_env, "")
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._auth = url_credentials(cfg.base_url)
        self._secrets = tuple(v for v in (api_key, *(self._auth or ())) if v)
        for secret in self._secrets:
            register_secret(secret)
        self._rng = random.Random()
        self._loop: _LoopThread | None = None
        self._client: httpx.AsyncClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.cfg.model!r}, base_url={self.base_url!r})"

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        """Run the batch on the teacher's event loop (callable from any thread, inside a running loop too)."""
        if not requests:
            return []
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
        return self._loop.run(self._acomplete(requests))

    def close(self) -> None:
        """Close the pooled connections and stop the event loop (a later ``complete`` starts anew)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._client is not None:
            loop.run(self._client.aclose())
            self._client = None
        loop.stop()

    def __enter__(self) -> OpenAITeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pooled_client(self) -> httpx.AsyncClient:
        """The run's client, created on first use inside the teacher's event loop."""
        if self._client is None:
            limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                auth=httpx.BasicAuth(*self._auth) if self._auth else None,
                timeout=httpx.Timeout(self.cfg.timeout_s),
                limits=limits,
            )
        return self._client

    async def _acomplete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        """Complete all requests concurrently (bounded by ``cfg.concurrency``), in request order.

        A refused request (401/403/404) cancels the others and raises ``TeacherRefusedError``.
        """
        semaphore = asyncio.Semaphore(self.cfg.concurrency)
        client = self._pooled_client()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._complete_one(client, semaphore, r)) for r in requests]
        except* TeacherRefusedError as refused:
            raise refused.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _complete_one(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, request: CompletionRequest
    ) -> CompletionResult:
        start = time.perf_counter()
        try:
            endpoint, payload = self._payload(request)
        except ValueError as exc:
            return CompletionResult(request.key, [], error=str(exc))
        if self.cfg.native_n or request.n == 1:
            outcomes = [await self._native_n(client, semaphore, endpoint, payload, request.n)]
        else:
            calls = [self._call(client, semaphore, endpoint, payload, 1) for _ in range(request.n)]
            outcomes = list(await asyncio.gather(*calls))
        texts: list[str] = []
        usage: dict[str, int] = {}
        errors: list[str] = []
        for outcome_texts, outcome_usage, error in outcomes:
            texts.extend(trim_at_stop(t, request.stop) for t in outcome_texts)
            for key, value in outcome_usage.items():
                usage[key] = usage.get(key, 0) + value
            if error:
                errors.append(error)
        error = None
        if errors:
            error = errors[0] if len(outcomes) == 1 else f"{len(errors)} of {len(outcomes)} calls failed: {errors[0]}"
            logger.warning("teacher request %s failed: %s", request.key, error)
        return CompletionResult(request.key, texts, error=error, usage=usage, latency_s=time.perf_counter() - start)

    async def _native_n(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, endpoint: str, payload: dict, n: int
    ) -> tuple[list[str], dict[str, int], str | None]:
        """Ask for ``n`` choices, asking again for the rest when a server returns fewer."""
        texts: list[str] = []
        usage: dict[str, int] = {}
        while len(texts) < n:
            got, got_usage, error = await self._call(client, semaphore, endpoint, payload, n - len(texts))
            texts.extend(got)
            for key, value in got_usage.items():
                usage[key] = usage.get(key, 0) + value
            if error:
                return texts, usage, error
        return texts[:n], usage, None

    def _payload(self, request: CompletionRequest) -> tuple[str, dict[str, Any]]:
        cfg = self.cfg
        use_chat = cfg.api == "chat" or (cfg.api == "auto" and request.messages is not None)
        payload: dict[str, Any] = {
            "model": cfg.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if use_chat:
            payload["messages"] = request.messages or [{"role": "user", "content": request.prompt}]
        elif request.messages is not None:
            raise ValueError(f"request {request.key!r}: the completions API needs a plain prompt, not messages")
        else:
            payload["prompt"] = request.prompt
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.temperature > 0 and cfg.top_p < 1:
            payload["top_p"] = cfg.top_p
        if cfg.seed:
            payload["seed"] = cfg.seed
        return ("chat/completions" if use_chat else "completions"), payload

    async def _call(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, endpoint: str, payload: dict, n: int
    ) -> tuple[list[str], dict[str, int], str | None]:
        """One logical call with retries: ``(texts, usage, error)``."""
        body = dict(payload, n=n) if n > 1 else payload
        attempts = self.cfg.max_retries + 1
        failure = _Failure("not attempted", retry=False)
        for attempt in range(attempts):
            async with semaphore:
                try:
                    return (*await self._attempt(client, endpoint, body, n), None)
                except _Failure as exc:
                    failure = exc
            if failure.refused:
                raise TeacherRefusedError(
                    f"the teacher at {self.base_url} refused the request ({failure.reason}); "
                    f"check base_url, model {self.cfg.model!r} and the key in ${self.cfg.api_key_env}"
                )
            if not failure.retry:
                return [], {}, failure.reason
            if attempt + 1 < attempts:
                delay = self._delay(attempt, failure.retry_after)
                logger.debug("retrying %s in %.2fs after: %s", endpoint, delay, failure.reason)
                await asyncio.sleep(delay)
        return [], {}, f"{failure.reason} (gave up after {attempts} attempts)"

    async def _attempt(
        self, client: httpx.AsyncClient, endpoint: str, body: dict, n: int
    ) -> tuple[list[str], dict[str, int]]:
        try:
            response = await asyncio.wait_for(client.post(endpoint, json=body), self.cfg.timeout_s)
        except (httpx.TimeoutException, TimeoutError):
            raise _Failure(f"timed out after {self.cfg.timeout_s:g}s", retry=True) from None
        except httpx.TransportError as exc:
            raise _Failure(self._redact(f"connection error ({type(exc).__name__}: {exc})"), retry=True) from None
        if response.status_code != 200:
            reason = self._redact(f"HTTP {response.status_code}: {response.text[:300].strip()}")
            retry_after = _retry_after(response.headers.get("retry-after"))
            refused = response.status_code in REFUSED_STATUS
            raise _Failure(reason, retry=response.status_code in RETRY_STATUS, retry_after=retry_after, refused=refused)
        try:
            return _parse(response, chat=endpoint.startswith("chat"), n=n)
        except _Failure as exc:
            exc.reason = self._redact(exc.reason)
            raise

    def _redact(self, text: str) -> str:
        """``text`` without this teacher's key or URL credentials (a server may echo them)."""
        return redact_text(text, self._secrets)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2**attempt)
        delay = ceiling * (0.5 + 0.5 * self._rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cfg.backoff_max_s))
        return delay


def _parse(response: httpx.Response, *, chat: bool, n: int) -> tuple[list[str], dict[str, int]]:
    """Texts (in choice order) and usage from a 200 reply; a malformed one raises a retryable _Failure."""
    try:
        data = response.json()
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        texts = [c["message"]["content"] if chat else c["text"] for c in choices]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        snippet = response.text[:120].strip()
        raise _Failure(f"malformed reply ({type(exc).__name__}: {exc}): {snippet!r}", retry=True) from None
    if not texts or len(texts) > n or not all(isinstance(t, str) for t in texts):
        raise _Failure(f"malformed reply: expected up to {n} text choice(s), got {len(texts)}", retry=True)
    empty = sum(not t.strip() for t in texts)
    if empty:
        raise _Failure(f"empty completion ({empty} of {len(texts)} choices)", retry=True)
    raw_usage = data.get("usage") or {}
    usage = {k: int(raw_usage[k]) for k in USAGE_KEYS if isinstance(raw_usage.get(k), (int, float))}
    return texts, usage


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@register_teacher("openai", OpenAITeacherConfig)
def build_openai(cfg: TeacherConfig) -> OpenAITeacher:
    return OpenAITeacher(cfg)
