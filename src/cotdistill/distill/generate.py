"""Turn questions into filtered teacher rationales: ``generate_rationales(cfg, examples, out_dir)``.

For each question: build the domain's few-shot CoT prompt, ask the teacher for ``k`` samples,
extract and score each sample's answer with the domain's task, keep samples by policy
(``distill.filtering``), and, with ``rationalize``, ask again with the gold answer as a hint
when no sample was correct (STaR). Writes into ``out_dir``:

* ``rationales.jsonl``: one ``RationaleRecord`` per sample (``distill.store``), appended and
  fsynced per record, so a killed run restarted with the same arguments does only the missing
  work; samples whose request failed are retried on the next run;
* ``stats.json``: per-domain ``asked`` (questions), ``answered``, ``kept``, ``accuracy``,
  tokens and time, written atomically;
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
from cotdistill.console import format_table, progress
from cotdistill.distill.filtering import KeepPolicy, Sample, decide
from cotdistill.distill.prompts import DEFAULT_SYSTEM, Prompt, PromptStyle, build_prompt, select_shots, shot_candidates
from cotdistill.distill.store import STORE_NAME, RationaleRecord, RationaleStore
from cotdistill.errors import ConfigError
from cotdistill.io import atomic_write_json
from cotdistill.tasks import Example, Task, get_task
from cotdistill.teachers import CompletionRequest, CompletionResult, Teacher, TeacherConfig, build_teacher

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
    seed: int = field(default=0, metadata={"help": "seed for the choice of shots"})

    def __post_init__(self) -> None:
        for name in ("k", "max_tokens", "min_votes", "rationalize_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {self.num_shots}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.k > 1 and self.temperature == 0 and self.teacher.backend != "oracle":
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
    the same arguments resumes: stored samples are skipped, failed ones retried.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_unique(examples)
    _check_resumable(cfg, out_dir)
    save_config(cfg, out_dir / CONFIG_NAME)
    teacher = teacher if teacher is not None else build_teacher(cfg.teacher)
    scorers = _resolve_tasks(examples, tasks)
    candidates = _shot_candidates(examples, shots, cfg)
    started = time.perf_counter()
    with RationaleStore(out_dir / STORE_NAME) as store:
        jobs = [_plan(cfg, store, e, scorers[e.domain], candidates.get(e.domain, [])) for e in examples]
        todo = [job for job in jobs if job.base or job.hinted]
        bar = progress(range(len(examples)), total=len(examples), desc="rationales", disable=not show_progress)
        bar.update(len(examples) - len(todo))
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start : start + cfg.batch_size]
            _run_batch(cfg, teacher, store, batch)
            bar.update(len(batch))
        bar.close()
        stats = summarize(store.records(), wall_s=time.perf_counter() - started, teacher=teacher.id)
    atomic_write_json(out_dir / STATS_NAME, stats)
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
    base = [i for i in range(cfg.k) if store.can_write((example.id, i))]
    job = _Job(example, task, shots, base)
    if not base and _wants_hint(cfg, store, job):
        job.hinted = _hint_indices(cfg, store, example)
    return job


def _wants_hint(cfg: GenerateConfig, store: RationaleStore, job: _Job) -> bool:
    """STaR rationalisation: enabled, gold known, and the teacher answered but never correctly.

    Looks at the question's first-attempt samples, stored and just generated (failed ones
    do not count: a question whose requests all failed is retried, not rationalised).
    """
    if not (cfg.rationalize and cfg.keep == "correct" and job.example.answer):
        return False
    verdicts = [
        bool(r.correct)
        for r in store.samples_of(job.example.id)
        if r.sample_index < cfg.k and r.error is None and r.sample_index not in job.results
    ]
    verdicts += [bool(_score(cfg, job, text)[1]) for i, (text, error, _, _) in job.results.items() if error is None]
    return bool(verdicts) and not any(verdicts)


def _hint_indices(cfg: GenerateConfig, store: RationaleStore, example: Example) -> list[int]:
    indices = range(cfg.k, cfg.k + cfg.rationalize_samples)
    return [i for i in indices if store.can_write((example.id, i))]


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
        meta={
            "example_id": example.id,
            "domain": example.domain,
            "answer": example.answer,
            "rationale": example.rationale,
        },
    )
    return prompt, request


def _run_batch(cfg: GenerateConfig, teacher: Teacher, store: RationaleStore, batch: list[_Job]) -> None:
    """Base samples for the batch, then hinted samples where none was correct; then store all."""
    _ask(cfg, teacher, [(job, job.base) for job in batch if job.base], hint=False)
    for job in batch:
        if job.base and _wants_hint(cfg, store, job):
            job.hinted = _hint_indices(cfg, store, job.example)
    _ask(cfg, teacher, [(job, job.hinted) for job in batch if job.hinted], hint=True)
    for job in batch:
        _store_job(cfg, teacher, store, job)


def _ask(cfg: GenerateConfig, teacher: Teacher, wanted: list[tuple[_Job, list[int]]], *, hint: bool) -> None:
    if not wanted:
        return
    prompts, requests = zip(*(_request(cfg, job, len(indices), hint=hint) for job, indices in wanted))
    results = teacher.complete(list(requests))
    for (job, indices), prompt, result in zip(wanted, prompts, results):
        for position, index in enumerate(indices):
            if position < len(result.texts):
                job.results[index] = (result.texts[position], None, prompt, result)
            else:
                job.results[index] = ("", result.error or "the teacher returned too few samples", prompt, result)


def _score(cfg: GenerateConfig, job: _Job, text: str) -> tuple[str | None, bool | None]:
    score = job.task.score(text, job.example)
    prediction = score.extracted_strict if cfg.match == "strict" else score.extracted
    if not job.example.answer:
        return prediction, None
    return prediction, score.strict if cfg.match == "strict" else score.flexible


def _store_job(cfg: GenerateConfig, teacher: Teacher, store: RationaleStore, job: _Job) -> None:
    """Decide over every sample of the question (stored and new) and append the new records."""
    samples: dict[int, Sample] = {
        r.sample_index: Sample(r.sample_index, r.rationale, r.prediction, r.correct, r.error, r.rationalized)
        for r in store.samples_of(job.example.id)
    }
    for index, (text, error, _, _) in job.results.items():
        prediction, correct = _score(cfg, job, text) if error is None else (None, None)
        samples[index] = Sample(index, text.strip(), prediction, correct, error, rationalized=index >= cfg.k)
    ordered = [samples[i] for i in sorted(samples)]
    verdicts = decide(ordered, cfg.keep, has_gold=bool(job.example.answer), min_votes=cfg.min_votes, dedupe=cfg.dedupe)
    for sample, verdict in zip(ordered, verdicts):
        if sample.index not in job.results:
            continue
        _, _, prompt, result = job.results[sample.index]
        shared_by = max(len(result.texts), 1)
        store.append(
            RationaleRecord(
                example_id=job.example.id,
                domain=job.example.domain,
                question=job.example.question,
                gold=job.example.answer,
                sample_index=sample.index,
                rationale=sample.text,
                prediction=sample.prediction,
                correct=sample.correct,
                kept=verdict.kept,
                reason=verdict.reason,
                teacher=teacher.id,
                prompt_hash=prompt.hash,
                sampling={
                    "k": cfg.k,
                    "temperature": cfg.temperature,
                    "max_tokens": cfg.max_tokens,
                    "style": cfg.style,
                    "num_shots": len(job.shots),
                    "hint": sample.rationalized,
                },
                usage=dict(result.usage, shared_by=shared_by),
                latency_s=result.latency_s,
                rationalized=sample.rationalized,
                error=sample.error,
            )
        )


def summarize(records: Sequence[RationaleRecord], *, wall_s: float, teacher: str) -> dict[str, Any]:
    """Per-domain and total figures over stored records.

    ``asked``: questions asked; ``answered``: questions with at least one sample whose answer
    could be extracted; ``kept``: kept samples; ``questions_kept``: questions with one or more
    kept; ``accuracy``: correct / scored first-attempt samples of labelled questions (None when
    there are none); tokens are the requests' usage split over the samples they produced;
    ``teacher_s``: summed request latency (overlapping requests count in full).
    """
    groups: dict[str, list[RationaleRecord]] = defaultdict(list)
    for record in records:
        groups[record.domain].append(record)
    domains = {name: _domain_stats(rows) for name, rows in sorted(groups.items())}
    total = _domain_stats(list(records))
    return {"teacher": teacher, "wall_s": round(wall_s, 3), "domains": domains, "total": total}


def _domain_stats(rows: Sequence[RationaleRecord]) -> dict[str, Any]:
    questions = {r.example_id for r in rows}
    answered = {r.example_id for r in rows if r.prediction is not None}
    scored = [r for r in rows if not r.rationalized and r.error is None and r.correct is not None]
    share = [(r.usage, max(int(r.usage.get("shared_by", 1)), 1)) for r in rows]
    return {
        "asked": len(questions),
        "samples": len(rows),
        "answered": len(answered),
        "kept": sum(r.kept for r in rows),
        "questions_kept": len({r.example_id for r in rows if r.kept}),
        "accuracy": round(sum(bool(r.correct) for r in scored) / len(scored), 4) if scored else None,
        "errors": sum(r.error is not None for r in rows),
        "rationalized_kept": sum(r.kept and r.rationalized for r in rows),
        "prompt_tokens": round(sum(u.get("prompt_tokens", 0) / n for u, n in share)),
        "completion_tokens": round(sum(u.get("completion_tokens", 0) / n for u, n in share)),
        "teacher_s": round(sum(r.latency_s / n for r, (_, n) in zip(rows, share)), 3),
    }


STATS_COLUMNS = ("asked", "answered", "kept", "questions_kept", "accuracy", "errors", "completion_tokens", "teacher_s")


def stats_table(stats: Mapping[str, Any]) -> str:
    """The per-domain stats as a plain-text table (one row per domain plus the total)."""
    rows = [[name, *(_cell(d[c]) for c in STATS_COLUMNS)] for name, d in stats["domains"].items()]
    rows.append(["total", *(_cell(stats["total"][c]) for c in STATS_COLUMNS)])
    return format_table(["domain", *STATS_COLUMNS], rows)


def _cell(value: Any) -> Any:
    return "-" if value is None else value
