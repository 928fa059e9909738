"""The teacher protocol: requests in, completions out, failures as data (never raised mid-batch).

A ``CompletionRequest`` carries either a plain ``prompt`` (completions-style) or chat
``messages`` (``[{"role": ..., "content": ...}]``) and asks for ``n`` samples. The matching
``CompletionResult`` has the same ``key``, ``len(texts) == n`` on success, or ``error`` set
(with whatever texts were produced, possibly none). ``usage`` holds ``prompt_tokens``,
``completion_tokens`` and ``total_tokens`` summed over everything the request cost.

One kind of failure does raise: ``TeacherRefusedError`` when the server refuses the client
itself (authentication, authorisation, unknown model or endpoint), because every further
request would fail the same way. A backend holding connections has ``close()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from cotdistill.errors import CotDistillError
from cotdistill.precision import PRECISION_HELP, Precision, legacy_precision
from cotdistill.redaction import strip_url_credentials
from cotdistill.registry import Registry, did_you_mean

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class CompletionRequest:
    """One prompt to complete ``n`` times. ``meta`` travels with it (the oracle reads it)."""

    key: str
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 256
    stop: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(f"request {self.key!r}: give exactly one of prompt or messages")
        if self.n < 1:
            raise ValueError(f"request {self.key!r}: n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"request {self.key!r}: temperature must be >= 0, got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"request {self.key!r}: max_tokens must be >= 1, got {self.max_tokens}")


@dataclass
class CompletionResult:
    """The answer to one request: ``texts`` (n samples), or ``error`` describing why not."""

    key: str
    texts: list[str]
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class TeacherRefusedError(CotDistillError):
    """The teacher refused the client (HTTP 401/403/404): the run stops at once with the server's message."""


@runtime_checkable
class Teacher(Protocol):
    """Anything that completes a batch of requests. Results come back in request order."""

    id: str

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]: ...


@dataclass
class TeacherConfig:
    """Which teacher to use and how to talk to it (fields not used by a backend are ignored)."""

    backend: str = field(default="oracle", metadata={"help": "teacher backend: openai | hf | oracle"})
    model: str = field(
        default="",
        metadata={"help": "openai: the served model name; hf: a local HF directory or model name"},
    )
    base_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "openai: the server's OpenAI-compatible base URL (ends in /v1)"},
    )
    api: Literal["auto", "chat", "completions"] = field(
        default="auto",
        metadata={"help": "openai: endpoint; auto uses chat for messages and completions for plain prompts"},
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "openai: name of the environment variable holding the API key (read, never saved)"},
    )
    concurrency: int = field(default=8, metadata={"help": "openai: requests in flight at once"})
    timeout_s: float = field(default=120.0, metadata={"help": "openai: seconds before one attempt is abandoned"})
    max_retries: int = field(
        default=4, metadata={"help": "openai: retries on 429/5xx/connection errors/timeouts/malformed replies"}
    )
    backoff_s: float = field(default=0.5, metadata={"help": "openai: first retry delay; doubles per retry, jittered"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "openai: longest delay between retries"})
    native_n: bool = field(
        default=True,
        metadata={"help": "openai: send n>1 as the API's `n`; false issues n separate requests"},
    )
    batch_size: int = field(default=8, metadata={"help": "hf: prompts per generate() call"})
    device: str = field(default="auto", metadata={"help": "hf: cpu, cuda, cuda:1, ... or auto"})
    precision: Precision = field(
        default=Precision.AUTO, metadata={"help": f"hf: weights and compute precision: {PRECISION_HELP}"}
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = field(
        default=None, metadata={"help": "deprecated: write precision (fp32, bf16, fp16 or auto)"}
    )
    gguf_file: str | None = field(default=None, metadata={"help": "hf: a .gguf file inside `model` to load from"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "hf: run model code shipped with the checkpoint (off unless you trust it)"}
    )
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass when temperature > 0"})
    seed: int = field(default=0, metadata={"help": "hf: sampling seed; openai: sent as `seed` when not 0"})

    def __post_init__(self) -> None:
        import cotdistill.teachers  # noqa: F401  (registers the built-in backends)

        self.precision = legacy_precision("dtype", self.dtype, self.precision)
        self.dtype = None

        if self.backend not in TEACHERS:
            known = TEACHERS.names()
            raise ValueError(
                f"unknown backend {self.backend!r}{did_you_mean(self.backend, known)} (known: {', '.join(known)})"
            )
        for name in ("concurrency", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("timeout_s", "backoff_max_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {self.backoff_s}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.backend in ("openai", "hf") and not self.model:
            raise ValueError(f"backend '{self.backend}' needs `model` (a served model name or a HF directory)")
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


TEACHERS: Registry[Callable[[TeacherConfig], Teacher]] = Registry("teacher backend")


def register_teacher(name: str):
    """Register a backend factory ``(TeacherConfig) -> Teacher`` under ``name``."""
    return TEACHERS.register(name)


def build_teacher(cfg: TeacherConfig) -> Teacher:
    """Instantiate the backend named by ``cfg.backend``."""
    return TEACHERS.get(cfg.backend)(cfg)


def trim_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (the stop string is dropped)."""
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]
