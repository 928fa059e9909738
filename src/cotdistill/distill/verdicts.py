"""Verdicts of a question's samples, final only once they can no longer change.

A verdict that depends on the question's other samples (a majority vote, dedupe: see
``filtering.needs_all_samples``) is stored ``pending`` (not kept) until every first-attempt
sample (and, when STaR rationalisation is due, every hinted one) has arrived without error;
then all of the question's samples get verdicts computed from the final samples, and stored
verdicts that differ are revised. Independent verdicts are final at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cotdistill.distill.filtering import Sample, decide, needs_all_samples
from cotdistill.distill.store import RationaleRecord, RationaleStore
from cotdistill.tasks import Example

if TYPE_CHECKING:
    from cotdistill.distill.generate import GenerateConfig


def hint_due(cfg: GenerateConfig, example: Example, base_verdicts: list[bool]) -> bool:
    """Rationalisation is due when enabled, gold is known, and scored first attempts were all wrong."""
    if not (cfg.rationalize and cfg.keep == "correct" and example.answer):
        return False
    return bool(base_verdicts) and not any(base_verdicts)


def question_complete(cfg: GenerateConfig, example: Example, samples: Mapping[int, RationaleRecord]) -> bool:
    """Every first-attempt sample (and, when due, every hinted one) of a question arrived without error."""

    def arrived(indices: range) -> bool:
        return all(i in samples and samples[i].error is None for i in indices)

    if not arrived(range(cfg.k)):
        return False
    if hint_due(cfg, example, [bool(samples[i].correct) for i in range(cfg.k)]):
        return arrived(range(cfg.k, cfg.k + cfg.rationalize_samples))
    return True


def store_verdicts(
    cfg: GenerateConfig, store: RationaleStore, example: Example, fresh: dict[int, RationaleRecord]
) -> list[RationaleRecord]:
    """Decide over every sample of ``example`` (stored and ``fresh``, new ones without a verdict);
    append the fresh records with their verdicts.

    A verdict that depends on the other samples (``filtering.needs_all_samples``) stays
    ``pending`` until the question is complete; then every sample gets its final verdict,
    computed from the final samples (stored verdicts that differ are revised). Returns the
    new records.
    """
    fresh = dict(fresh)
    samples = {r.sample_index: r for r in store.samples_of(example.id)} | fresh
    ordered = [samples[i] for i in sorted(samples)]
    scored = [Sample(r.sample_index, r.rationale, r.prediction, r.correct, r.error, r.rationalized) for r in ordered]
    verdicts = decide(scored, cfg.keep, has_gold=bool(example.answer), min_votes=cfg.min_votes, dedupe=cfg.dedupe)
    final = not needs_all_samples(cfg.keep, has_gold=bool(example.answer), dedupe=cfg.dedupe)
    final = final or question_complete(cfg, example, samples)
    missing = [i for i in range(cfg.k) if i not in samples or samples[i].error is not None]
    for record, verdict in zip(ordered, verdicts):
        if record.sample_index not in fresh:
            if final and record.error is None:
                store.revise(record.key, kept=verdict.kept, reason=verdict.reason)
            continue
        if record.error is None and not final:
            waiting = ", ".join(map(str, missing)) or "the hinted ones"
            record = dataclasses.replace(
                record, reason=f"pending: samples {waiting} of this question failed", pending=True
            )
        else:
            record = dataclasses.replace(record, kept=verdict.kept, reason=verdict.reason)
        store.append(record)
        fresh[record.sample_index] = record
    return list(fresh.values())
