"""Per-question predictions of every run, for reading rationales side by side.

An evaluation report (``kind: eval``) carries its scored records under ``examples``; a ``cot``
pipeline comparison keeps them per variant and seed in
``<run dir>/runs/<variant>/seed-<s>/eval/report.json``. Run names match ``load_runs``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotdistill.report.runs import REPORT_JSON, ReportSource, read_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One run's answer to one question: ``rationale`` is the generated text, ``extracted`` the
    answer the metric read from it (None: none found), ``correct`` the metric's verdict."""

    run: str
    seed: str
    domain: str
    role: str
    example_id: str
    question: str
    gold: str
    rationale: str
    extracted: str | None
    correct: bool

    @property
    def question_key(self) -> tuple[str, str]:
        return self.domain, self.example_id


def _from_eval(report: dict[str, Any], run: str, seed: str, metric: str) -> Iterable[Prediction]:
    domains = report["summary"]["domains"]
    extracted_key = "extracted_strict" if metric == "strict" else "extracted"
    for domain, rows in (report.get("examples") or {}).items():
        for row in rows:
            yield Prediction(
                run=run,
                seed=seed,
                domain=domain,
                role=domains[domain]["role"],
                example_id=str(row["id"]),
                question=row["question"],
                gold=str(row["gold"]),
                rationale=row["prediction"],
                extracted=row.get(extracted_key),
                correct=bool(row[metric]),
            )


def collect_predictions(sources: Sequence[ReportSource], *, metric: str | None = None) -> list[Prediction]:
    """Every scored record of the reports, with ``metric`` (default: each report's headline).

    A comparison variant seed whose evaluation is missing is left out with a warning.
    """
    predictions: list[Prediction] = []
    for source in sources:
        report, chosen = source.report, metric or source.report["metric"]
        if report["kind"] == "eval":
            predictions.extend(_from_eval(report, source.name, "", chosen))
            continue
        if report.get("pipeline", "cot") != "cot":
            continue  # only the cot pipeline keeps an evaluation report per variant and seed
        prefix = f"{source.name}/" if source.name else ""
        for variant, entry in report["runs"].items():
            for seed in entry["seeds"]:
                path = Path(source.directory) / "runs" / variant / f"seed-{seed}" / "eval" / REPORT_JSON
                if not path.exists():
                    log.warning("%s: no per-question predictions (%s is missing)", variant, path)
                    continue
                predictions.extend(_from_eval(read_report(path), f"{prefix}{variant}", str(seed), chosen))
    return predictions


def disagreements(predictions: Sequence[Prediction]) -> set[tuple[str, str]]:
    """Questions (domain, id) on which the predictions differ in answer or verdict."""
    outcomes: dict[tuple[str, str], set[tuple[str | None, bool]]] = {}
    for p in predictions:
        outcomes.setdefault(p.question_key, set()).add((p.extracted, p.correct))
    return {key for key, seen in outcomes.items() if len(seen) > 1}
