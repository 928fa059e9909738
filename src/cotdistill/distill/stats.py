"""Figures over a rationale store: ``summarize`` (what ``stats.json`` holds) and ``stats_table``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from cotdistill.console import format_table
from cotdistill.distill.store import RationaleRecord


def summarize(
    records: Sequence[RationaleRecord], *, wall_s: float, teacher: str, run: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Per-domain and total figures over stored records.

    ``asked``: questions asked; ``answered``: questions with at least one sample whose answer
    could be extracted; ``kept``: kept samples; ``questions_kept``: questions with one or more
    kept; ``pending``: samples waiting for their question's failed samples before their verdict;
    ``accuracy``: correct / scored first-attempt samples of labelled questions (None when
    there are none); tokens are the requests' usage split over the samples they produced;
    ``teacher_s``: summed request latency (overlapping requests count in full). ``run`` (this
    run's own tally: samples asked and failed) is stored as given.
    """
    groups: dict[str, list[RationaleRecord]] = defaultdict(list)
    for record in records:
        groups[record.domain].append(record)
    domains = {name: _domain_stats(rows) for name, rows in sorted(groups.items())}
    total = _domain_stats(list(records))
    stats = {"teacher": teacher, "wall_s": round(wall_s, 3), "domains": domains, "total": total}
    if run is not None:
        stats["run"] = dict(run)
    return stats


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
        "pending": sum(r.pending for r in rows),
        "accuracy": round(sum(bool(r.correct) for r in scored) / len(scored), 4) if scored else None,
        "errors": sum(r.error is not None for r in rows),
        "rationalized_kept": sum(r.kept and r.rationalized for r in rows),
        "prompt_tokens": round(sum(u.get("prompt_tokens", 0) / n for u, n in share)),
        "completion_tokens": round(sum(u.get("completion_tokens", 0) / n for u, n in share)),
        "teacher_s": round(sum(r.latency_s / n for r, (_, n) in zip(rows, share)), 3),
    }


STATS_COLUMNS = ("asked", "answered", "kept", "questions_kept", "pending", "accuracy", "errors")
STATS_COLUMNS += ("completion_tokens", "teacher_s")


def stats_table(stats: Mapping[str, Any]) -> str:
    """The per-domain stats as a plain-text table (one row per domain plus the total)."""
    rows = [[name, *(_cell(d[c]) for c in STATS_COLUMNS)] for name, d in stats["domains"].items()]
    rows.append(["total", *(_cell(stats["total"][c]) for c in STATS_COLUMNS)])
    return format_table(["domain", *STATS_COLUMNS], rows)


def _cell(value: Any) -> Any:
    return "-" if value is None else value
