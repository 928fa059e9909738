"""The ``openai`` teacher: any OpenAI-compatible server (vLLM, llama.cpp's server, OpenAI).

Requests go out concurrently over one ``httpx.AsyncClient`` with at most
``cfg.concurrency`` in flight. Each HTTP call is retried with exponential backoff and jitter on
429/408/5xx, connection errors, timeouts and malformed replies (``Retry-After`` is honoured up to
``backoff_max_s``); any other 4xx fails at once. A request that still fails comes back with
``error`` set; nothing raises mid-batch. The API key is read from the environment variable
named by ``cfg.api_key_env`` and only ever placed in the Authorization header.

``n > 1``: with ``native_n`` the API's ``n`` is used (servers that return fewer choices are
asked again for the rest); without it, ``n`` single-sample requests are issued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from cotdistill.teachers.base import (
    CompletionRequest,
    CompletionResult,
    TeacherConfig,
    register_teacher,
    trim_at_stop,
)

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


class _Failure(Exception):
    """One HTTP attempt failed; ``retry`` says whether another attempt may help."""

    def __init__(self, reason: str, *, retry: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.retry_after = reason, retry, retry_after


class OpenAITeacher:
    """Completes requests against ``cfg.base_url`` with model ``cfg.model``."""

    def __init__(self, cfg: TeacherConfig):
        self.cfg = cfg
        self.id = f"openai:{cfg.model}"
        self._headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(cfg.api_key_env, "")
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.cfg.model!r}, base_url={self.cfg.base_url!r})"

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        """Blocking wrapper around ``acomplete`` (works inside a running event loop too)."""
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.acomplete(requests))
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.acomplete(requests)).result()

    async def acomplete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        """Complete all requests concurrently (bounded by ``cfg.concurrency``), in request order."""
        semaphore = asyncio.Semaphore(self.cfg.concurrency)
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        async with httpx.AsyncClient(
            base_url=self.cfg.base_url.rstrip("/") + "/",
            headers=self._headers,
            timeout=httpx.Timeout(self.cfg.timeout_s),
            limits=limits,
        ) as client:
            return list(await asyncio.gather(*(self._complete_one(client, semaphore, r) for r in requests)))

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
            raise _Failure(f"connection error ({type(exc).__name__}: {exc})", retry=True) from None
        if response.status_code != 200:
            reason = f"HTTP {response.status_code}: {response.text[:300].strip()}"
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise _Failure(reason, retry=response.status_code in RETRY_STATUS, retry_after=retry_after)
        return _parse(response, chat=endpoint.startswith("chat"), n=n)

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
    raw_usage = data.get("usage") or {}
    usage = {k: int(raw_usage[k]) for k in USAGE_KEYS if isinstance(raw_usage.get(k), (int, float))}
    return texts, usage


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@register_teacher("openai")
def build_openai(cfg: TeacherConfig) -> OpenAITeacher:
    return OpenAITeacher(cfg)
