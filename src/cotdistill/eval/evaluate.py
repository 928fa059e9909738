"""Evaluate a student on several domains: generate, score, summarise, write the report data.

``evaluate`` writes into ``out_dir``:

* ``predictions.jsonl``: one scored record per question (appended as it goes, so a killed
  evaluation resumes where it stopped when run again with the same settings);
* ``report.json``: the config, per-domain and per-group accuracy with bootstrap intervals,
  chance baselines, and every per-example record.

The readable ``report.md`` is the report layer's (``cotdistill.report.render.write_eval_markdown``).

Questions of all domains are generated together, ``chunk_size`` at a time (the student batches
and sorts them by length), so many small domains cost no more than one large one; the progress
bar counts questions. With ``shots = k`` each question is preceded by ``k`` solved questions of
its domain (``cotdistill.eval.fewshot``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cotdistill.config import to_dict
from cotdistill.console import counter_bar
from cotdistill.errors import CotDistillError
from cotdistill.eval.fewshot import few_shot_question
from cotdistill.eval.generation import Generator, generate_samples
from cotdistill.eval.scoring import chance_baseline, score_example
from cotdistill.eval.stats import bootstrap_ci
from cotdistill.eval.summary import METRICS, ROLES, summarize
from cotdistill.io import JsonlAppender, atomic_write_json, iter_jsonl
from cotdistill.precision import PRECISION_HELP, Precision
from cotdistill.tasks.base import Example, Task, get_task

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
REPORT_JSON = "report.json"
_SETTINGS = "eval_settings.json"


@dataclass
class EvalConfig:
    """How a student is evaluated."""

    split: str = field(default="test", metadata={"help": "suite split to evaluate (train, dev or test)"})
    limit: int | None = field(default=None, metadata={"help": "evaluate at most this many questions per domain"})
    max_new_tokens: int = field(default=256, metadata={"help": "generation budget per answer"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generation batch"})
    num_samples: int = field(
        default=1, metadata={"help": "self-consistency: samples per question, majority vote over answers"}
    )
    temperature: float = field(
        default=0.0, metadata={"help": "sampling temperature (0 = greedy; must be > 0 when num_samples > 1)"}
    )
    stop: list[str] = field(default_factory=list, metadata={"help": "strings that end a generation"})
    metric: Literal["strict", "flexible"] = field(
        default="strict", metadata={"help": "headline metric: strict (answer sentence) or flexible extraction"}
    )
    bootstrap_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples for the intervals"})
    confidence: float = field(default=0.95, metadata={"help": "confidence level of the intervals"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap (and of sampling)"})
    chunk_size: int = field(
        default=64, metadata={"help": "questions generated between saved progress points (at least batch_size)"}
    )
    precision: Precision = field(default=Precision.AUTO, metadata={"help": PRECISION_HELP})
    shots: int = field(
        default=0, metadata={"help": "solved questions of the same domain shown before each question (few-shot)"}
    )

    def __post_init__(self) -> None:
        if self.split not in ("train", "dev", "test"):
            raise ValueError(f"split must be train, dev or test, got {self.split!r}")
        for name in ("max_new_tokens", "batch_size", "num_samples", "bootstrap_resamples", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.shots < 0:
            raise ValueError(f"shots must be >= 0, got {self.shots}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or null, got {self.limit}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.num_samples > 1 and self.temperature == 0:
            raise ValueError(
                f"num_samples={self.num_samples} needs temperature > 0 (greedy samples would all be identical)"
            )
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")

    def generation_settings(self) -> dict[str, Any]:
        """The fields that change predictions (a resumed evaluation must match them)."""
        keys = ("split", "max_new_tokens", "num_samples", "temperature", "stop", "seed", "precision", "shots")
        return {k: to_dict(getattr(self, k)) for k in keys}


def evaluate(
    student: Generator,
    examples_by_domain: Mapping[str, Sequence[Example]],
    roles: Mapping[str, str],
    cfg: EvalConfig,
    out_dir: str | Path,
    *,
    tasks: Mapping[str, Task] | None = None,
    meta: Mapping[str, Any] | None = None,
    show_progress: bool = True,
    shot_pool: Mapping[str, Sequence[Example]] | None = None,
) -> dict[str, Any]:
    """Generate and score every question of every domain; write and return ``report.json``'s data.

    ``roles[domain]`` is ``source``, ``target_near`` or ``target_far``; ``tasks[domain]`` is the
    task that scores it (default: the registered task named like the domain). ``meta`` (e.g.
    the checkpoint path) is stored in the report as is. ``shot_pool[domain]`` holds the labelled
    examples few-shot prompts draw from (default: the evaluated examples themselves).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = dict(tasks or {})
    for domain in examples_by_domain:
        if roles.get(domain) not in ROLES:
            raise ValueError(f"domain '{domain}' needs a role ({', '.join(ROLES)}), got {roles.get(domain)!r}")
        if domain not in tasks:
            tasks[domain] = get_task(domain)
    selected = {d: list(ex)[: cfg.limit] if cfg.limit else list(ex) for d, ex in examples_by_domain.items() if ex}
    for domain in examples_by_domain.keys() - selected.keys():
        log.warning("domain '%s' has no %s examples; left out of the report", domain, cfg.split)
    if not selected:
        raise CotDistillError(f"nothing to evaluate: no domain has {cfg.split} examples")
    done = _load_done(out, {**cfg.generation_settings(), "meta": dict(meta or {})})
    _set_seed(cfg.seed)
    pools = {d: list((shot_pool or {}).get(d) or examples_by_domain[d]) for d in selected}
    todo = [(d, e) for d, examples in selected.items() for e in examples if e.id not in done]
    size = max(cfg.chunk_size, cfg.batch_size)  # a chunk never splits a generation batch
    bar = counter_bar(len(todo), desc="eval questions", disable=not show_progress or not todo)
    with bar, JsonlAppender(out / PREDICTIONS) as sink:
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            prompts = [
                student.prompt(few_shot_question(e, pools[d], cfg.shots), tasks[d].answer_instruction) for d, e in chunk
            ]
            samples = generate_samples(
                student,
                prompts,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                num_samples=cfg.num_samples,
                batch_size=cfg.batch_size,
                stop=cfg.stop,
                precision=cfg.precision,
            )
            for (domain, example), texts in zip(chunk, samples):
                row = score_example(tasks[domain], example, texts).to_dict()
                sink.append(row)
                done[example.id] = row
            bar.update(len(chunk))
    report = build_report(selected, roles, tasks, done, cfg, meta)
    atomic_write_json(out / REPORT_JSON, report)
    return report


def build_report(
    examples_by_domain: Mapping[str, Sequence[Example]],
    roles: Mapping[str, str],
    tasks: Mapping[str, Task],
    results: Mapping[str, Mapping[str, Any]],
    cfg: EvalConfig,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble ``report.json`` data from scored records keyed by example id."""
    correct = {m: {} for m in METRICS}
    chance: dict[str, float | None] = {}
    chance_answers: dict[str, str | None] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for domain, examples in examples_by_domain.items():
        rows[domain] = [dict(results[e.id]) for e in examples]
        for metric in METRICS:
            correct[metric][domain] = np.array([[float(r[metric]) for r in rows[domain]]])
        baseline = chance_baseline(tasks[domain], examples)
        chance[domain], chance_answers[domain] = baseline.accuracy, baseline.answer
    summary = summarize(
        correct, roles, chance, n_resamples=cfg.bootstrap_resamples, confidence=cfg.confidence, seed=cfg.seed
    )
    for domain, answer in chance_answers.items():
        entry = summary["domains"][domain]
        entry["chance_answer"] = answer
        entry.update(breakdowns(rows[domain], cfg))
    return {
        "kind": "eval",
        "meta": dict(meta or {}),
        "config": to_dict(cfg),
        "metric": cfg.metric,
        "summary": summary,
        "examples": rows,
    }


def breakdowns(rows: Sequence[Mapping[str, Any]], cfg: EvalConfig) -> dict[str, Any]:
    """``metrics`` (named extra metrics, e.g. the harness's GSM8K filters) and ``by_type``
    (accuracy per question type) of one domain's scored rows, each ``{name: Interval}`` or
    ``{type: {n, strict, flexible}}``; empty when the rows carry neither."""
    kwargs = {"n_resamples": cfg.bootstrap_resamples, "confidence": cfg.confidence, "seed": cfg.seed}
    out: dict[str, Any] = {}
    names = sorted({name for r in rows for name in r.get("metrics") or {}})
    if names:
        out["metrics"] = {
            n: bootstrap_ci([float((r.get("metrics") or {}).get(n, False)) for r in rows], **kwargs).to_dict()
            for n in names
        }
    types = sorted({r["type"] for r in rows if r.get("type") is not None})
    if types:
        out["by_type"] = {}
        for kind in types:
            members = [r for r in rows if r.get("type") == kind]
            out["by_type"][kind] = {"n": len(members)} | {
                m: bootstrap_ci([float(r[m]) for r in members], **kwargs).to_dict() for m in METRICS
            }
    return out


def _load_done(out: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scored records from an earlier run with the same settings and meta (else start afresh)."""
    settings_path = out / _SETTINGS
    predictions = out / PREDICTIONS
    previous = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.exists() else None
    if previous != settings and predictions.exists():
        log.warning("%s was made with other generation settings; evaluating again from scratch", predictions)
        predictions.unlink()
    atomic_write_json(settings_path, settings)
    if not predictions.exists():
        return {}
    JsonlAppender(predictions).close()  # drops a torn last line left by a crash
    return {row["id"]: row for _, row in iter_jsonl(predictions)}


def _set_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
