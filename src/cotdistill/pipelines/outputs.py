"""The one writer of a pipeline run's outputs, used by every pipeline.

``config.yaml`` (the validated recipe, secrets redacted) is written once the stages are checked;
at the end, ``report.json`` (``kind: comparison``, ``pipeline``, ``runs`` in the shape
``cotdistill report`` reads, ``files``), ``accuracy.png`` (the runs' headline accuracy) and
``report.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cotdistill.config import save_config
from cotdistill.io import atomic_write_json, atomic_write_text
from cotdistill.report.plot import plot_accuracy
from cotdistill.report.runs import REPORT_JSON, runs_of

CONFIG_YAML = "config.yaml"
REPORT_MD = "report.md"
CHART_PNG = "accuracy.png"
KIND = "comparison"


def write_config(config: Any, out: Path) -> Path:
    """``out/config.yaml``: the recipe the run was made with."""
    path = out / CONFIG_YAML
    save_config(config, path)
    return path


def run_report(body: dict[str, Any], *, pipeline: str, title: str) -> dict[str, Any]:
    """The data of ``report.json``: ``kind``, ``pipeline`` and ``title`` first, then ``body``
    (whose ``runs`` maps a run name to ``{method, seeds, summary, ...}``)."""
    return {"kind": KIND, "pipeline": pipeline, "title": title, **body}


def write_report(out: Path, report: dict[str, Any], markdown: str) -> dict[str, Path]:
    """``report.json`` (``report`` from ``run_report`` plus ``files``), ``accuracy.png`` and ``report.md``."""
    files = {
        "report": out / REPORT_MD,
        "chart": out / CHART_PNG,
        "data": out / REPORT_JSON,
        "config": out / CONFIG_YAML,
    }
    report["files"] = {k: str(v) for k, v in files.items()}
    atomic_write_json(files["data"], report)
    plot_accuracy(runs_of(report, ""), files["chart"], title=report["title"])
    atomic_write_text(files["report"], markdown)
    return files
