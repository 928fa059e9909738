"""Read ``report.json`` files back as named runs that can be put side by side.

An evaluation report (``kind: eval``) is one run; a pipeline run (``kind: comparison``, any
pipeline: ``cot``, ``redis``, ``lm_guided``) holds one run per method variant or condition.
Every run carries the same ``summary`` shape (``cotdistill.eval.summary``): per-domain and
per-group intervals and chance baselines. Reports recorded before every pipeline wrote a
``kind`` are read too: the kind is inferred, and an ``lm_guided`` report's condition rows
become runs (``condition_runs``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotdistill.errors import DataError

REPORT_JSON = "report.json"


@dataclass(frozen=True)
class Run:
    """One column of a comparison: a name, its headline metric and its summary."""

    name: str
    metric: str
    summary: dict[str, Any]


def read_report(path: str | Path) -> dict[str, Any]:
    """The data of ``path`` (a ``report.json`` or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    if not path.exists():
        raise DataError("no report.json here (run `cotdistill eval` or `cotdistill run` first)", path=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", path=str(path), line=exc.lineno) from None
    if isinstance(data, dict) and "kind" not in data:
        data = _with_inferred_kind(data)
    if not isinstance(data, dict) or data.get("kind") not in ("eval", "comparison"):
        raise DataError("not a cotdistill report (expected kind 'eval' or 'comparison')", path=str(path))
    return data


def _with_inferred_kind(data: dict[str, Any]) -> dict[str, Any]:
    """An older report without ``kind``: an ``lm_guided`` run (condition rows), a comparison
    (runs with summaries) or an evaluation (a summary and examples)."""
    config = data.get("config") or {}
    if data.get("pipeline") == "lm_guided" and isinstance(data.get("rows"), list):
        task = (config.get("data") or {}).get("task", "multihop")
        runs = condition_runs(data["rows"], task, config.get("seed", 0))
        return {"kind": "comparison", "metric": "strict", "runs": runs, **data}
    if isinstance(data.get("runs"), dict):
        return {"kind": "comparison", "metric": "strict", **data}
    if "summary" in data and "examples" in data:
        return {"kind": "eval", "metric": "strict", **data}
    return data


def condition_runs(rows: Sequence[dict[str, Any]], domain: str, seed: int = 0) -> dict[str, Any]:
    """An ``lm_guided`` report's rows (one per condition and decoding) as runs on one ``domain``
    (the task): EM is the strict metric, F1 the flexible one, question types go to ``by_type``.

    Rows recorded without intervals (``em_ci``) give an interval of the mean alone.
    """
    runs: dict[str, Any] = {}
    for row in rows:
        name = row["condition"] + (f" (SC k={row['k']})" if row["self_consistency"] else "")
        scores = {
            kind: {"n": s["n"], "strict": _interval(s, "em"), "flexible": _interval(s, "f1")}
            for kind, s in row["scores"].items()
        }
        overall = scores.pop("all")
        entry = {
            "role": "source",
            "n": overall["n"],
            "seeds": 1,
            "strict": overall["strict"],
            "flexible": overall["flexible"],
            "chance": None,
        }
        if scores:
            entry["by_type"] = scores
        group = {"domains": [domain], "strict": entry["strict"], "flexible": entry["flexible"], "chance": None}
        summary = {"domains": {domain: entry}, "groups": {"in_domain": group}}
        runs[name] = {"method": "lm_guided", "seeds": [seed], "summary": summary}
    return runs


def _interval(score: dict[str, Any], metric: str) -> dict[str, float]:
    mean = float(score[metric])
    return dict(score.get(f"{metric}_ci") or {"mean": mean, "low": mean, "high": mean})


def runs_of(report: dict[str, Any], name: str) -> list[Run]:
    """The runs in one report; a comparison's runs are named ``name/variant`` unless ``name`` is empty."""
    if report["kind"] == "eval":
        return [Run(name, report["metric"], report["summary"])]
    prefix = f"{name}/" if name else ""
    return [Run(f"{prefix}{variant}", report["metric"], entry["summary"]) for variant, entry in report["runs"].items()]


@dataclass(frozen=True)
class ReportSource:
    """One report read from disk: its directory, its data and the name its runs go by."""

    directory: Path
    report: dict[str, Any]
    name: str


def read_sources(paths: Sequence[str | Path]) -> list[ReportSource]:
    """The reports in ``paths``; each is named after its directory, except a lone comparison
    (its runs are then just the variant names)."""
    sources = []
    for path in paths:
        path = Path(path)
        report = read_report(path)
        directory = path if path.is_dir() else path.parent
        single_comparison = len(paths) == 1 and report["kind"] == "comparison"
        sources.append(ReportSource(directory, report, "" if single_comparison else directory.name))
    return sources


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every run in the given run directories / report files, in order."""
    runs = [run for source in read_sources(paths) for run in runs_of(source.report, source.name)]
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"two runs are both named {duplicates[0]!r}; pass directories with different names")
    return runs
