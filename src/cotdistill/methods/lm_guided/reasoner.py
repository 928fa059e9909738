"""The frozen reasoner: any teacher backend answering from question + context (+ rationale).

A local reasoner is the ``hf`` teacher, so its generation runs on ``models.generation``'s engine.

The reasoner is never trained. Every call goes through ``Reasoner.complete``, which batches all
prompts of a call into one ``teacher.complete`` and caches the texts per full request
(teacher id, prompt, which embeds the rationale, sampling settings) in memory and in an
append-only JSONL file, so a second call with the same (prompt, rationale) never reaches the
teacher and a rerun of a pipeline is cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cotdistill import answers
from cotdistill.io import JsonlAppender, iter_jsonl
from cotdistill.teachers.base import CompletionRequest, Teacher, TeacherConfig

log = logging.getLogger(__name__)

ASPECTS = ("factuality", "relevance", "logicality", "coherence")
_DIGIT = re.compile(r"[1-5]")


@dataclass
class ReasonerConfig:
    """How prompts are sent to the reasoner."""

    chat: bool = field(default=True, metadata={"help": "send chat messages (true) or a plain prompt (false)"})
    max_answer_tokens: int = field(default=16, metadata={"help": "tokens for a short answer"})
    max_cot_tokens: int = field(default=128, metadata={"help": "tokens for the reasoner's own chain of thought"})
    sc_temperature: float = field(default=0.7, metadata={"help": "sampling temperature for self-consistency"})

    def __post_init__(self) -> None:
        for name in ("max_answer_tokens", "max_cot_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sc_temperature <= 0:
            raise ValueError(f"sc_temperature must be > 0, got {self.sc_temperature}")


@dataclass(frozen=True)
class Query:
    """One question for the reasoner: ``context`` is the rendered paragraphs, ``rationale`` optional."""

    question: str
    context: str
    rationale: str | None = None


def answer_prompt(query: Query) -> str:
    """Question + context (+ the guiding rationale), asking for a short answer only."""
    parts = [
        "Answer the question using the context."
        + (" A reasoning hint is given." if query.rationale is not None else "")
        + " Reply with the short answer only.",
        f"Context:\n{query.context}",
        f"Question: {query.question}",
    ]
    if query.rationale is not None:
        parts.append(f"Reasoning: {query.rationale.strip()}")
    return "\n\n".join(parts) + "\n\nAnswer:"


def cot_prompt(query: Query) -> str:
    """The reasoner writes its own chain of thought (ends with the answer sentence)."""
    return f"Context:\n{query.context}\n\nQuestion: {query.question}\n\n{answers.instruction('text')}\n\nReasoning:"


def judge_prompt(query: Query, aspect: str) -> str:
    """Ask for a 1-5 rating of the rationale on one named aspect."""
    return (
        f"Context:\n{query.context}\n\nQuestion: {query.question}\n\nReasoning: {(query.rationale or '').strip()}\n\n"
        f"Rate the {aspect} of the reasoning from 1 (poor) to 5 (excellent). Reply with one digit.\n\nRating:"
    )


def short_answer(text: str) -> str:
    """The answer in a reasoner reply: the (normalised) answer-sentence span if any, else the first line."""
    stated = answers.extract(text, "text", strict=True)
    if stated:
        return stated
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0].rstrip(".").strip() if lines else ""


def rating(text: str) -> float | None:
    """First digit 1-5 in a judge reply, scaled to [0, 1]; None when there is none."""
    match = _DIGIT.search(text)
    return (int(match.group(0)) - 1) / 4 if match else None


class Reasoner:
    """A frozen model behind a ``Teacher``, with a batched, cached ``complete``."""

    def __init__(self, teacher: Teacher, config: ReasonerConfig | None = None, cache_path: str | Path | None = None):
        self.teacher = teacher
        self.config = config or ReasonerConfig()
        self.cache: dict[str, list[str]] = {}
        self.stats = {"hits": 0, "misses": 0, "errors": 0}
        self._appender: JsonlAppender | None = None
        if cache_path is not None:
            cache_path = Path(cache_path)
            if cache_path.exists():
                for _, row in iter_jsonl(cache_path):
                    self.cache[row["key"]] = row["texts"]
            self._appender = JsonlAppender(cache_path)

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None

    def _key(self, prompt: str, n: int, temperature: float, max_tokens: int) -> str:
        payload = json.dumps([self.teacher.id, self.config.chat, prompt, n, temperature, max_tokens])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def complete(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int,
        n: int = 1,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> list[list[str] | None]:
        """Texts for every prompt (None where the teacher failed); one teacher call for the misses."""
        keys = [self._key(p, n, temperature, max_tokens) for p in prompts]
        missing: dict[str, str] = {}
        for key, prompt in zip(keys, prompts):
            if key in self.cache:
                self.stats["hits"] += 1
            elif key not in missing:
                missing[key] = prompt
        if missing:
            self.stats["misses"] += len(missing)
            requests = [self._request(key, prompt, n, temperature, max_tokens, stop) for key, prompt in missing.items()]
            for result in self.teacher.complete(requests):
                if result.error is not None or len(result.texts) != n:
                    self.stats["errors"] += 1
                    log.warning("reasoner request failed: %s", result.error)
                    continue
                self.cache[result.key] = list(result.texts)
                if self._appender is not None:
                    self._appender.append({"key": result.key, "texts": list(result.texts)})
        return [self.cache.get(key) for key in keys]

    def _request(
        self, key: str, prompt: str, n: int, temperature: float, max_tokens: int, stop: list[str] | None
    ) -> CompletionRequest:
        if self.config.chat:
            return CompletionRequest(
                key,
                messages=[{"role": "user", "content": prompt}],
                n=n,
                temperature=temperature,
                max_tokens=max_tokens,
                stop=stop,
            )
        return CompletionRequest(key, prompt=prompt, n=n, temperature=temperature, max_tokens=max_tokens, stop=stop)

    # ------------------------------------------------------------------ task-level calls

    def answer(self, queries: Sequence[Query], *, n: int = 1, temperature: float = 0.0) -> list[list[str] | None]:
        """Short answers (``n`` per query) given question + context (+ rationale)."""
        texts = self.complete(
            [answer_prompt(q) for q in queries],
            max_tokens=self.config.max_answer_tokens,
            n=n,
            temperature=temperature,
            stop=["\n"],
        )
        return [None if t is None else [short_answer(x) for x in t] for t in texts]

    def own_cot(self, queries: Sequence[Query], *, n: int = 1, temperature: float = 0.0) -> list[list[str] | None]:
        """The reasoner's own chains of thought (``n`` per query)."""
        return self.complete(
            [cot_prompt(q) for q in queries], max_tokens=self.config.max_cot_tokens, n=n, temperature=temperature
        )

    def judge(self, queries: Sequence[Query], aspects: Sequence[str] = ASPECTS) -> list[float | None]:
        """Mean rating in [0, 1] of each query's rationale over ``aspects`` (None if no aspect parsed)."""
        prompts = [judge_prompt(q, aspect) for q in queries for aspect in aspects]
        texts = self.complete(prompts, max_tokens=4, stop=["\n"])
        scores: list[float | None] = []
        for i in range(len(queries)):
            chunk = texts[i * len(aspects) : (i + 1) * len(aspects)]
            values = [v for t in chunk if t is not None for v in [rating(t[0])] if v is not None]
            scores.append(sum(values) / len(values) if values else None)
        return scores


def resolve_reasoner(cfg: TeacherConfig) -> TeacherConfig:
    """An ``hf`` reasoner naming a preset points at its directory, pulled now rather than after training."""
    from cotdistill.models.pull import resolve_model
    from cotdistill.teachers.hf_local import HFTeacherConfig

    if not isinstance(cfg.options, HFTeacherConfig):
        return cfg
    return TeacherConfig(cfg.backend, dataclasses.replace(cfg.options, model=resolve_model(cfg.options.model)))


def default_reasoner() -> TeacherConfig:
    """The reasoner recipes get unless they say otherwise: SmolLM2-135M-Instruct, local."""
    return TeacherConfig(backend="hf", model="smollm2-135m-instruct", batch_size=16)
