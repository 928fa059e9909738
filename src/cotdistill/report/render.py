"""Markdown for evaluation reports, method comparisons and several runs side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cotdistill.eval.stats import Interval
from cotdistill.eval.summary import GROUP_TITLES, chance_verdict, difference_verdict, format_chance
from cotdistill.io import atomic_write_text
from cotdistill.report.runs import Run, runs_of
from cotdistill.report.table import comparison_rows, markdown_table

REPORT_MD = "report.md"
_EXAMPLES_SHOWN = 2
_CHANCE_NOTE = (
    "Chance is the accuracy of always giving the most common gold answer of the domain's test split "
    "(at least uniform guessing), for closed answer sets only (yes/no, labels, choices); open answers "
    "(numbers, text, lists) have none (n/a). Intervals are 95% bootstrap intervals."
)


def _verdicts(summary: Mapping[str, Any], metric: str) -> list[str]:
    return [f"- {chance_verdict(summary, group, metric)}" for group in ("in_domain", "out_of_domain")]


def _domain_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for domain, entry in summary["domains"].items():
        rows.append(
            [
                domain,
                entry["role"],
                str(entry["n"]),
                Interval.from_dict(entry["strict"]).format(),
                Interval.from_dict(entry["flexible"]).format(),
                format_chance(entry["chance"]),
            ]
        )
    return rows


def _group_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            group,
            ", ".join(entry["domains"]),
            Interval.from_dict(entry["strict"]).format(),
            Interval.from_dict(entry["flexible"]).format(),
            format_chance(entry["chance"]),
        ]
        for group, entry in summary["groups"].items()
    ]


def _breakdown_sections(summary: Mapping[str, Any]) -> list[str]:
    """Tables of named extra metrics and of accuracy per question type, where domains have them."""
    metric_rows, type_rows = [], []
    for domain, entry in summary["domains"].items():
        for name, interval in (entry.get("metrics") or {}).items():
            metric_rows.append([domain, name, Interval.from_dict(interval).format()])
        for kind, row in (entry.get("by_type") or {}).items():
            cells = [Interval.from_dict(row[m]).format() for m in ("strict", "flexible")]
            type_rows.append([domain, kind, str(row["n"]), *cells])
    lines = []
    if metric_rows:
        lines += [
            "## Other metrics (%)",
            "",
            "`gsm8k_strict_match` / `gsm8k_flexible_extract`: lm-evaluation-harness's GSM8K filters and exact match.",
            "",
            markdown_table(["domain", "metric", "accuracy"], metric_rows),
            "",
        ]
    if type_rows:
        lines += [
            "## Accuracy per question type (%)",
            "",
            markdown_table(["domain", "type", "n", "strict", "flexible"], type_rows),
            "",
        ]
    return lines


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_eval(report: Mapping[str, Any]) -> str:
    """``report.md`` of one evaluation: per-domain and group tables, chance verdicts, some errors."""
    summary, metric = report["summary"], report["metric"]
    meta = report.get("meta") or {}
    lines = ["# Evaluation report", ""]
    for key, value in meta.items():
        lines.append(f"- {key}: `{value}`")
    config = report["config"]
    lines += [
        f"- split `{config['split']}`, greedy"
        if config["num_samples"] == 1
        else f"- split `{config['split']}`, self-consistency over {config['num_samples']} samples at T={config['temperature']}",
        f"- headline metric: **{metric}**",
        "",
        "## Chance",
        "",
        *_verdicts(summary, metric),
        "",
        _CHANCE_NOTE,
        "",
        "## Accuracy per domain (%)",
        "",
        markdown_table(["domain", "role", "n", "strict", "flexible", "chance"], _domain_rows(summary)),
        "",
        "## Macro averages (%)",
        "",
        markdown_table(["group", "domains", "strict", "flexible", "chance"], _group_rows(summary)),
        "",
        *_breakdown_sections(summary),
        "## Sample errors",
        "",
    ]
    for domain, rows in report["examples"].items():
        wrong = [r for r in rows if not r[metric]][:_EXAMPLES_SHOWN]
        for row in wrong:
            lines.append(
                f"- **{domain}** `{row['id']}` gold `{row['gold']}`, extracted `{row['extracted_strict'] if metric == 'strict' else row['extracted']}`: "
                f"{_shorten(row['prediction'])}"
            )
    return "\n".join(lines).rstrip() + "\n"


def write_eval_markdown(report: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``render_eval(report)`` as ``out_dir/report.md``; returns its path."""
    path = Path(out_dir) / REPORT_MD
    atomic_write_text(path, render_eval(report))
    return path


def render_runs(runs: Sequence[Run], *, title: str, metric: str | None = None, chart: str | None = None) -> str:
    """Several runs side by side: one accuracy table (with group macro averages) and verdicts."""
    headers, rows = comparison_rows(runs, metric=metric)
    lines = [f"# {title}", "", f"Accuracy % ({metric or runs[0].metric}) with 95% interval.", ""]
    lines += [markdown_table(headers, rows), ""]
    if chart:
        lines += [f"![accuracy per domain]({chart})", ""]
    lines += ["## Chance", ""]
    for run in runs:
        lines.append(f"**{run.name}**")
        lines += _verdicts(run.summary, metric or run.metric)
        lines.append("")
    lines.append(_CHANCE_NOTE)
    return "\n".join(lines).rstrip() + "\n"


def paired_verdicts(report: Mapping[str, Any]) -> list[str]:
    """One sentence per later variant and target group: is its difference from the baseline nonzero?"""
    metric = report["metric"]
    lines = []
    for name, entry in (report.get("paired") or {}).items():
        groups = entry["difference"]["groups"]
        for group in ("out_of_domain", "target_near", "target_far", "in_domain"):
            if group in groups:
                lines.append(difference_verdict(entry["difference"], group, metric, name, entry["baseline"]))
    return lines


def _paired_section(report: Mapping[str, Any]) -> list[str]:
    paired = report.get("paired") or {}
    if not paired:
        return []
    metric = report["metric"]
    lines = [
        "## Paired differences",
        "",
        f"Each method minus `{next(iter(paired.values()))['baseline']}`, in accuracy points ({metric}), with "
        "95% bootstrap intervals paired over seeds and test examples (the same seeds and questions are "
        "resampled for both methods).",
        "",
    ]
    rows = []
    for name, entry in paired.items():
        difference = entry["difference"]
        seeds = ", ".join(str(s) for s in entry.get("seeds") or report["runs"][name]["seeds"])
        for domain, values in difference["domains"].items():
            rows.append([name, seeds, domain, values["role"], Interval.from_dict(values[metric]).format()])
        for group, values in difference["groups"].items():
            rows.append(
                [name, seeds, f"**{GROUP_TITLES[group]}**", "macro", Interval.from_dict(values[metric]).format()]
            )
    lines += [markdown_table(["method", "paired seeds", "domain", "role", "difference"], rows), ""]
    lines += [f"- {sentence}" for sentence in paired_verdicts(report)]
    return lines + [""]


def render_comparison(report: Mapping[str, Any], *, chart: str | None = None) -> str:
    """``report.md`` of a pipeline run: methods side by side, paired differences from the first
    method, and each seed's group averages."""
    runs = runs_of(dict(report), "")
    text = render_runs(runs, title=report.get("title", "Method comparison"), chart=chart)
    lines = [text, *_paired_section(report), "## Per seed", ""]
    metric = report["metric"]
    seed_rows = []
    for variant, entry in report["runs"].items():
        for seed, groups in entry["per_seed"].items():
            seed_rows.append(
                [variant, str(seed)]
                + [f"{100 * groups[g][metric]:.1f}" if g in groups else "-" for g in ("in_domain", "out_of_domain")]
            )
    lines += [markdown_table(["method", "seed", "in-domain", "out-of-domain"], seed_rows), ""]
    lines += timings_section(report.get("timings_s") or {})
    files = report.get("files") or {}
    if files:
        lines += ["## Files", ""] + [f"- {key}: `{value}`" for key, value in files.items()] + [""]
    return "\n".join(lines).rstrip() + "\n"


def timings_section(timings: Mapping[str, float]) -> list[str]:
    """A "Stage times" section (wall seconds and minutes per stage, then the total); none when empty."""
    if not timings:
        return []
    rows = [[stage, f"{seconds:.1f}", f"{seconds / 60:.1f}"] for stage, seconds in timings.items()]
    total = sum(timings.values())
    rows.append(["total", f"{total:.1f}", f"{total / 60:.1f}"])
    return ["## Stage times", "", markdown_table(["stage", "seconds", "minutes"], rows), ""]
