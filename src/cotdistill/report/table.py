"""The side-by-side accuracy table: one row per domain and per group, one column per run."""

from __future__ import annotations

from collections.abc import Sequence

from cotdistill.eval.stats import Interval
from cotdistill.eval.summary import GROUP_TITLES, ROLES, format_chance
from cotdistill.report.runs import Run
from cotdistill.tasks.suite import Role

ROLE_TITLES = {Role.SOURCE: "source", Role.TARGET_NEAR: "near", Role.TARGET_FAR: "far"}


def ordered_domains(runs: Sequence[Run]) -> list[str]:
    """Domains of all runs, sources first, then near and far targets (first-seen order inside)."""
    seen: dict[str, str] = {}
    for run in runs:
        for domain, entry in run.summary["domains"].items():
            seen.setdefault(domain, entry["role"])
    return [d for role in ROLES for d in seen if seen[d] == role]


def ordered_groups(runs: Sequence[Run]) -> list[str]:
    present = {g for run in runs for g in run.summary["groups"]}
    return [g for g in GROUP_TITLES if g in present]


def _lookup(run: Run, section: str, key: str) -> dict | None:
    return run.summary[section].get(key)


def comparison_rows(runs: Sequence[Run], *, metric: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (accuracy % with 95% interval) for the runs; ``metric`` defaults per run."""
    headers = ["domain", "role", "chance"] + [r.name for r in runs]
    rows: list[list[str]] = []
    for section, keys in (("domains", ordered_domains(runs)), ("groups", ordered_groups(runs))):
        for key in keys:
            entries = [_lookup(r, section, key) for r in runs]
            first = next(e for e in entries if e is not None)
            label = key if section == "domains" else f"**{GROUP_TITLES[key]}**"
            role = ROLE_TITLES[first["role"]] if section == "domains" else "macro"
            cells = [
                Interval.from_dict(e[metric or r.metric]).format() if e is not None else "-"
                for r, e in zip(runs, entries)
            ]
            rows.append([label, role, format_chance(first["chance"]), *cells])
    return headers, rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
