"""Turn questions into filtered teacher rationales: ``generate_rationales(cfg, examples, out_dir)``.

For each question: build the domain's few-shot CoT prompt, ask the teacher for ``k`` samples,
extract and score each sample's answer with the domain's task, keep samples by policy
(``distill.filtering``), and, with ``rationalize``, ask again with the gold answer as a hint
when no sample was correct (STaR). Writes into ``out_dir``:

* ``rationales.jsonl``: one ``RationaleRecord`` per sample (``distill.store``), appended and
  fsynced per record, so a killed run restarted with the same arguments does only the missing
  work; samples whose request failed are retried on the next run;
* ``stats.json``: per-domain ``asked`` (questions), ``answered``, ``kept``, ``pending``,
  ``accuracy``, tokens and time, and this run's ``asked``/``failed`` samples, written
  atomically (also when the run stops early);
* ``generate_config.yaml``: the resolved config (secrets redacted).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cotdistill.config import load_yaml, save_config, to_dict
from cotdistill.console import progress
from cotdistill.distill.filtering import KeepPolicy
from cotdistill.distill.prompts import DEFAULT_SYSTEM, Prompt, PromptStyle, build_prompt, select_shots, shot_candidates
from cotdistill.distill.stats import summarize
from cotdistill.distill.store import STORE_NAME, RationaleRecord, RationaleStore
from cotdistill.distill.verdicts import hint_due, store_verdicts
from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.io import atomic_write_json
from cotdistill.locking import output_lock
from cotdistill.tasks import Example, Task, get_task
from cotdistill.teachers import (
    CompletionRequest,
    CompletionResult,
    ExampleSubject,
    Teacher,
    TeacherConfig,
    build_teacher,
)

logger = logging.getLogger(__name__)

STATS_NAME = "stats.json"
CONFIG_NAME = "generate_config.yaml"


@dataclass
class GenerateConfig:
    """How to sample and filter teacher rationales."""

    teacher: TeacherConfig = field(default_factory=TeacherConfig, metadata={"help": "the teacher backend"})
    k: int = field(default=1, metadata={"help": "samples per question"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0 = greedy)"})
    max_tokens: int = field(default=256, metadata={"help": "longest rationale in tokens"})
    keep: KeepPolicy = field(
        default="correct",
        metadata={"help": "correct: matches gold (majority without gold) | majority: self-consistency vote | all"},
    )
    match: Literal["strict", "flexible"] = field(
        default="strict",
        metadata={"help": "strict: the answer must be stated as 'The answer is X' | flexible: last answer-like span"},
    )
    min_votes: int = field(default=1, metadata={"help": "majority: votes the winning answer needs"})
    dedupe: bool = field(default=True, metadata={"help": "drop kept rationales identical to an earlier one"})
    rationalize: bool = field(
        default=False,
        metadata={"help": "STaR (keep: correct): re-ask with the gold answer as a hint when no sample was correct"},
    )
    rationalize_samples: int = field(default=1, metadata={"help": "samples per rationalisation request"})
    num_shots: int = field(default=3, metadata={"help": "worked examples (with rationales) in each prompt"})
    style: PromptStyle = field(default="chat", metadata={"help": "chat messages or a plain completion prompt"})
    system: str = field(
        default=DEFAULT_SYSTEM,
        metadata={"help": "system/header text; {instruction} becomes the domain's answer instruction"},
    )
    batch_size: int = field(default=32, metadata={"help": "questions sent to the teacher per call"})
    max_failure_rate: float = field(
        default=0.5,
        metadata={
            "help": "stop and exit non-zero once more than this share of the run's samples failed "
            "(checked after every batch; what succeeded is kept; 1 never stops)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed for the choice of shots"})

    def __post_init__(self) -> None:
        for name in ("k", "max_tokens", "min_votes", "rationalize_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {self.num_shots}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate must be in [0, 1], got {self.max_failure_rate}")
        if self.k > 1 and self.temperature == 0 and self.teacher.sampled:
            logger.warning("k=%d samples at temperature 0 are usually identical; dedupe will drop them", self.k)
        if "{instruction}" not in self.system:
            raise ValueError(f"system must contain '{{instruction}}', got {self.system!r}")


@dataclass
class _Job:
    """The work left for one question: which base and rationalisation samples are missing."""

    example: Example
    task: Task
    shots: list[Example]
    base: list[int]
    hinted: list[int] = field(default_factory=list)
    results: dict[int, tuple[str, str | None, Prompt, CompletionResult]] = field(default_factory=dict)


class GenerationFailedError(CotDistillError):
    """Too many teacher samples failed; what succeeded is stored and the same command resumes."""


@dataclass
class _Tally:
    """This run's teacher samples: how many were asked for and how many failed."""

    asked: int = 0
    failed: int = 0
    first_error: str | None = None

    def add(self, records: Sequence[RationaleRecord]) -> None:
        self.asked += len(records)
        for record in records:
            if record.error is not None:
                self.failed += 1
                self.first_error = self.first_error or record.error

    def too_many_failed(self, limit: float) -> bool:
        return self.asked > 0 and self.failed / self.asked > limit


def generate_rationales(
    cfg: GenerateConfig,
    examples: Sequence[Example],
    out_dir: str | Path,
    teacher: Teacher | None = None,
    *,
    shots: Mapping[str, Sequence[Example]] | None = None,
    tasks: Mapping[str, Task] | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Sample, filter and store rationales for ``examples``; returns the stats (also in stats.json).

    ``shots`` maps a domain to examples with rationales to use as worked shots (default: the
    domain's own examples, never the question itself). ``tasks`` maps a domain to the Task that
    scores it (default: ``get_task(example.meta.get("task", example.domain))``). Re-running with
    the same arguments resumes: stored samples are skipped, failed ones retried. ``out_dir`` is
    locked for the run (``locking.output_lock``). When more than ``cfg.max_failure_rate`` of
    this run's samples failed (checked after every batch), the run stops, writes its stats and
    raises ``GenerationFailedError``; a refusing teacher raises ``TeacherRefusedError`` at once.
    """
    with output_lock(out_dir) as out_dir:
        _check_unique(examples)
        _check_resumable(cfg, out_dir)
        save_config(cfg, out_dir / CONFIG_NAME)
        owned = teacher is None
        teacher = build_teacher(cfg.teacher) if teacher is None else teacher
        try:
            return _generate(cfg, examples, out_dir, teacher, shots, tasks, show_progress)
        finally:
            if owned and hasattr(teacher, "close"):
                teacher.close()


def _generate(
    cfg: GenerateConfig,
    examples: Sequence[Example],
    out_dir: Path,
    teacher: Teacher,
    shots: Mapping[str, Sequence[Example]] | None,
    tasks: Mapping[str, Task] | None,
    show_progress: bool,
) -> dict[str, Any]:
    scorers = _resolve_tasks(examples, tasks)
    candidates = _shot_candidates(examples, shots, cfg)
    started = time.perf_counter()
    tally = _Tally()
    with RationaleStore(out_dir / STORE_NAME) as store:
        try:
            jobs = [_plan(cfg, store, e, scorers[e.domain], candidates.get(e.domain, [])) for e in examples]
            todo = [job for job in jobs if job.base or job.hinted]
            for job in jobs:
                if not (job.base or job.hinted):
                    _store_job(cfg, teacher, store, job)  # finalises verdicts a killed run left pending
            bar = progress(range(len(examples)), total=len(examples), desc="rationales", disable=not show_progress)
            bar.update(len(examples) - len(todo))
            for start in range(0, len(todo), cfg.batch_size):
                batch = todo[start : start + cfg.batch_size]
                with store.batch():  # one fsync per batch: a kill loses at most the batch in flight
                    tally.add(_run_batch(cfg, teacher, store, batch))
                bar.update(len(batch))
                if tally.too_many_failed(cfg.max_failure_rate):
                    break
            bar.close()
        finally:
            run = {"asked": tally.asked, "failed": tally.failed}
            stats = summarize(store.records(), wall_s=time.perf_counter() - started, teacher=teacher.id, run=run)
            atomic_write_json(out_dir / STATS_NAME, stats)
    if tally.too_many_failed(cfg.max_failure_rate):
        raise GenerationFailedError(
            f"{tally.failed} of {tally.asked} teacher samples failed in this run (more than "
            f"generate.max_failure_rate={cfg.max_failure_rate:g}); first error: {tally.first_error}. "
            f"What succeeded is saved in {out_dir / STORE_NAME} (stats: {out_dir / STATS_NAME}); "
            "fix the teacher and rerun the same command to retry the failed samples"
        )
    return stats


def _check_unique(examples: Sequence[Example]) -> None:
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise ConfigError(f"example id {example.id!r} appears twice in the questions; ids must be unique")
        seen.add(example.id)


RESUME_KEYS = ("k", "temperature", "max_tokens", "keep", "match", "min_votes", "dedupe", "rationalize")
RESUME_KEYS += ("rationalize_samples", "num_shots", "style", "system", "seed")


def _check_resumable(cfg: GenerateConfig, out_dir: Path) -> None:
    """Refuse to resume a store made with different sampling/filtering settings (teacher may change)."""
    saved_path = out_dir / CONFIG_NAME
    if not saved_path.exists() or not (out_dir / STORE_NAME).exists():
        return
    saved = load_yaml(saved_path)
    current = to_dict(cfg)
    changed = [key for key in RESUME_KEYS if key in saved and saved[key] != current[key]]
    if changed:
        details = ", ".join(f"{key}: {saved[key]!r} -> {current[key]!r}" for key in changed)
        raise ConfigError(
            f"{out_dir}: rationales there were generated with other settings ({details}); "
            "resume with the same settings or write to a new output directory"
        )


def _resolve_tasks(examples: Sequence[Example], tasks: Mapping[str, Task] | None) -> dict[str, Task]:
    resolved: dict[str, Task] = dict(tasks or {})
    for example in examples:
        if example.domain not in resolved:
            resolved[example.domain] = get_task(str(example.meta.get("task", example.domain)))
    return resolved


def _shot_candidates(
    examples: Sequence[Example], shots: Mapping[str, Sequence[Example]] | None, cfg: GenerateConfig
) -> dict[str, list[Example]]:
    pools: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        pools[example.domain].append(example)
    if shots is not None:
        pools.update({domain: list(pool) for domain, pool in shots.items()})
    return {domain: shot_candidates(pool, cfg.num_shots, seed=cfg.seed) for domain, pool in pools.items()}


def _plan(cfg: GenerateConfig, store: RationaleStore, example: Example, task: Task, pool: list[Example]) -> _Job:
    shots = select_shots(pool, cfg.num_shots, exclude_id=example.id)
    base = [i for i in range(cfg.k) if not store.has_sample((example.id, i))]
    job = _Job(example, task, shots, base)
    if not base and _wants_hint(cfg, store, job):
        job.hinted = _hint_indices(cfg, store, example)
    return job


def _wants_hint(cfg: GenerateConfig, store: RationaleStore, job: _Job) -> bool:
    """STaR rationalisation: enabled, gold known, and the teacher answered but never correctly.

    Looks at the question's first-attempt samples, stored and just generated (failed ones
    do not count: a question whose requests all failed is retried, not rationalised).
    """
    stored = [r for r in store.samples_of(job.example.id) if r.sample_index not in job.results]
    fresh = [bool(_score(cfg, job, text)[1]) for text, error, _, _ in job.results.values() if error is None]
    return hint_due(
        cfg, job.example, [bool(r.correct) for r in stored if r.error is None and r.sample_index < cfg.k] + fresh
    )


def _hint_indices(cfg: GenerateConfig, store: RationaleStore, example: Example) -> list[int]:
    indices = range(cfg.k, cfg.k + cfg.rationalize_samples)
    return [i for i in indices if not store.has_sample((example.id, i))]


def _request(cfg: GenerateConfig, job: _Job, n: int, *, hint: bool) -> tuple[Prompt, CompletionRequest]:
    example = job.example
    prompt = build_prompt(
        example.question,
        job.task.answer_instruction,
        job.shots,
        style=cfg.style,
        system=cfg.system,
        hint=example.answer if hint else None,
    )
    request = CompletionRequest(
        key=f"{example.id}:{'hint' if hint else 'base'}",
        prompt=prompt.prompt,
        messages=prompt.messages,
        n=n,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        stop=prompt.stop,
        subject=ExampleSubject(example.id, example.domain, example.answer, example.rationale),
    )
    return prompt, request


def _run_batch(
    cfg: GenerateConfig, teacher: Teacher, store: RationaleStore, batch: list[_Job]
) -> list[RationaleRecord]:
    """Base samples for the batch, then hinted samples where none was correct; then store all.

    Returns the new records (failed ones have ``error`` set).
    """
    _ask(cfg, teacher, [(job, job.base) for job in batch if job.base], hint=False)
    for job in batch:
        if job.base and _wants_hint(cfg, store, job):
            job.hinted = _hint_indices(cfg, store, job.example)
    _ask(cfg, teacher, [(job, job.hinted) for job in batch if job.hinted], hint=True)
    return [record for job in batch for record in _store_job(cfg, teacher, store, job)]


def _ask(cfg: GenerateConfig, teacher: Teacher, wanted: list[tuple[_Job, list[int]]], *, hint: bool) -> None:
    """Ask the teacher; an empty completion counts as a failed sample (retried by the next run)."""
    if not wanted:
        return
    prompts, requests = zip(*(_request(cfg, job, len(indices), hint=hint) for job, indices in wanted))
    results = teacher.complete(list(requests))
    for (job, indices), prompt, result in zip(wanted, prompts, results):
        for position, index in enumerate(indices):
            if position >= len(result.texts):
                job.results[index] = ("", result.error or "the teacher returned too few samples", prompt, result)
            elif not result.texts[position].strip():
                job.results[index] = ("", "empty completion", prompt, result)
            else:
                job.results[index] = (result.texts[position], None, prompt, result)


def _score(cfg: GenerateConfig, job: _Job, text: str) -> tuple[str | None, bool | None]:
    score = job.task.score(text, job.example)
    prediction = score.extracted_strict if cfg.match == "strict" else score.extracted
    if not job.example.answer:
        return prediction, None
    return prediction, score.strict if cfg.match == "strict" else score.flexible


def _store_job(cfg: GenerateConfig, teacher: Teacher, store: RationaleStore, job: _Job) -> list[RationaleRecord]:
    """Store the question's new samples with their verdicts (``distill.verdicts``); returns them."""
    fresh = {index: _record(cfg, teacher, job, index) for index in sorted(job.results)}
    return store_verdicts(cfg, store, job.example, fresh)


def _record(cfg: GenerateConfig, teacher: Teacher, job: _Job, index: int) -> RationaleRecord:
    """The record of a new sample, scored, without a verdict yet (``kept`` false)."""
    text, error, prompt, result = job.results[index]
    prediction, correct = _score(cfg, job, text) if error is None else (None, None)
    rationalized = index >= cfg.k
    return RationaleRecord(
        example_id=job.example.id,
        domain=job.example.domain,
        question=job.example.question,
        gold=job.example.answer,
        sample_index=index,
        rationale=text.strip(),
        prediction=prediction,
        correct=correct,
        kept=False,
        reason="",
        teacher=teacher.id,
        prompt_hash=prompt.hash,
        sampling={
            "k": cfg.k,
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
            "style": cfg.style,
            "num_shots": len(job.shots),
            "hint": rationalized,
        },
        usage=dict(result.usage, shared_by=max(len(result.texts), 1)),
        latency_s=result.latency_s,
        rationalized=rationalized,
        error=error,
    )
