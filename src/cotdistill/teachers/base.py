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

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.registry import Registry, did_you_mean


@dataclass(frozen=True)
class RequestSubject:
    """What a request is about, for backends that answer from known data rather than a model.

    A typed protocol between the code asking and such a backend: subclass it (frozen) with the
    fields the backend reads. Model backends ignore it; it never leaves the process.
    """


@dataclass(frozen=True)
class ExampleSubject(RequestSubject):
    """The example a rationale is asked for (the ``oracle`` backend answers with its ``rationale``)."""

    example_id: str
    domain: str
    answer: str
    rationale: str | None = None


@dataclass
class CompletionRequest:
    """One prompt to complete ``n`` times; ``subject`` (typed, optional) says what it is about."""

    key: str
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 256
    stop: list[str] | None = None
    subject: RequestSubject | None = None

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


@dataclass(frozen=True)
class TeacherBackend:
    """A registered backend: its settings dataclass (``TeacherConfig.options``) and its factory.

    ``sampled``: whether its samples depend on the temperature (the oracle's never do).
    """

    options: type
    build: Callable[[TeacherConfig], Teacher]
    sampled: bool = True


TEACHERS: Registry[TeacherBackend] = Registry("teacher backend")
OptionsT = TypeVar("OptionsT")


def register_teacher(name: str, options: type, *, sampled: bool = True):
    """Register a backend factory ``(TeacherConfig) -> Teacher`` under ``name``, with its settings dataclass.

    ``options`` is the dataclass holding that backend's settings (``TeacherConfig.options``); its
    fields are the keys a recipe writes beside ``backend``. Returns the factory unchanged.
    """

    def decorator(build: Callable[[TeacherConfig], Teacher]) -> Callable[[TeacherConfig], Teacher]:
        TEACHERS.register(name)(TeacherBackend(options, build, sampled))
        return build

    return decorator


def backend_spec(name: str) -> TeacherBackend:
    """The registered backend ``name``; ``ValueError`` (with a did-you-mean) for an unknown one."""
    import cotdistill.teachers  # noqa: F401  (registers the built-in backends)

    if name not in TEACHERS:
        known = TEACHERS.names()
        raise ValueError(f"unknown backend {name!r}{did_you_mean(name, known)} (known: {', '.join(known)})")
    return TEACHERS.get(name)


@dataclass(init=False)
class TeacherConfig:
    """Which teacher backend to use (``backend``) and that backend's own settings (``options``).

    ``options`` is an instance of the dataclass the backend registered (``HFTeacherConfig``,
    ``OpenAITeacherConfig``, ...). Python callers may pass its fields as keywords
    (``TeacherConfig(backend="hf", model="m")``). A recipe writes them beside ``backend`` (the
    flat form) or under ``options``; flat keys that belong to another registered backend are
    ignored, so a recipe can switch backends with one override. Saved configs use ``options``.
    """

    backend: str = field(default="oracle", metadata={"help": "teacher backend (registered: openai | hf | oracle)"})
    options: Any = field(
        default=None, metadata={"help": "the backend's settings (its keys may also sit beside `backend`)"}
    )

    def __init__(self, backend: str = "oracle", options: Any = None, **settings: Any):
        spec = backend_spec(backend)
        if options is None:
            options = spec.options(**settings)
        elif not isinstance(options, spec.options):
            raise TypeError(f"backend {backend!r} takes {spec.options.__name__} options, got {type(options).__name__}")
        elif settings:
            options = dataclasses.replace(options, **settings)
        self.backend = backend
        self.options = options

    @property
    def spec(self) -> TeacherBackend:
        return backend_spec(self.backend)

    @property
    def model(self) -> str:
        """The model the backend serves or loads ('' for backends without one, e.g. the oracle)."""
        return str(getattr(self.options, "model", ""))

    @property
    def sampled(self) -> bool:
        """Whether the backend's samples depend on the temperature."""
        return self.spec.sampled

    def section(self, cls: type[OptionsT]) -> OptionsT:
        """``options`` as ``cls`` (the backend's settings class); ``TypeError`` for another backend's config."""
        if not isinstance(self.options, cls):
            raise TypeError(f"teacher backend {self.backend!r} has {type(self.options).__name__}, not {cls.__name__}")
        return self.options

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str, prefix: str) -> TeacherConfig:
        """Build from recipe data (``config.from_dict`` calls this): ``backend`` + flat keys or ``options``."""
        from cotdistill.config import from_dict

        data = dict(data)
        location = prefix.rstrip(".") or cls.__name__
        backend = data.pop("backend", "oracle")
        if not isinstance(backend, str):
            raise ConfigError(f"{where}: '{prefix}backend' must be a string, got {backend!r}")
        try:
            spec = backend_spec(backend)
        except ValueError as exc:
            raise ConfigError(f"{where}: {location}: {exc}") from None
        nested = data.pop("options", None)
        own = _option_names(spec.options)
        anywhere = set().union(*(_option_names(TEACHERS.get(name).options) for name in TEACHERS))
        unknown = [key for key in data if key not in anywhere]
        if unknown:
            valid = ["backend", "options", *own]
            raise ConfigError(
                f"{where}: unknown key '{prefix}{unknown[0]}'{did_you_mean(str(unknown[0]), sorted(anywhere))} "
                f"(valid keys for backend {backend!r}: {', '.join(valid)})"
            )
        flat = {key: value for key, value in data.items() if key in own}
        if nested is None:
            return cls(backend, from_dict(spec.options, flat, where=where, prefix=prefix))
        if not isinstance(nested, Mapping):
            raise ConfigError(f"{where}: '{prefix}options' must be a mapping, got {type(nested).__name__}")
        return cls(backend, from_dict(spec.options, {**flat, **nested}, where=where, prefix=f"{prefix}options."))


def _option_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def build_teacher(cfg: TeacherConfig) -> Teacher:
    """Instantiate the backend named by ``cfg.backend``."""
    return cfg.spec.build(cfg)


def check_top_p(top_p: float) -> None:
    """Nucleus mass must lie in (0, 1] (``ValueError`` otherwise)."""
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
