"""Read ``report.json`` files back as named runs that can be put side by side.

An evaluation report (``kind: eval``) is one run; a pipeline comparison (``kind: comparison``)
holds one run per method variant. Every run carries the same ``summary`` shape
(``cotdistill.eval.summary``): per-domain and per-group intervals and chance baselines.
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
    if not isinstance(data, dict) or data.get("kind") not in ("eval", "comparison"):
        raise DataError("not a cotdistill report (expected kind 'eval' or 'comparison')", path=str(path))
    return data


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
