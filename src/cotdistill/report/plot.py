"""PNG charts: accuracy per domain per run (grouped in-domain | out-of-domain | averages), training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cotdistill.eval.summary import GROUP_TITLES
from cotdistill.report.runs import Run
from cotdistill.report.table import ordered_domains, ordered_groups
from cotdistill.tasks.suite import Role


def plot_accuracy(runs: Sequence[Run], path: str | Path, *, metric: str | None = None, title: str = "") -> Path:
    """Draw one bar per run at every domain and group average (95% interval as error bars).

    Chance baselines are black ticks. Returns ``path``. Uses the Agg backend (no display).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = ordered_domains(runs)
    roles = {d: next(r.summary["domains"][d]["role"] for r in runs if d in r.summary["domains"]) for d in domains}
    averages = [g for g in ordered_groups(runs) if g in ("in_domain", "out_of_domain")]
    sections = [
        ("in-domain", [("domains", d, d) for d in domains if roles[d] == Role.SOURCE]),
        ("out-of-domain", [("domains", d, d) for d in domains if roles[d] != Role.SOURCE]),
        ("macro averages", [("groups", g, GROUP_TITLES[g].split(" (")[0]) for g in averages]),
    ]
    slots: list[tuple[str, str, str]] = []  # (summary section, key, tick label)
    positions: list[float] = []
    headings: list[tuple[float, str]] = []
    x = 0.0
    for heading, members in sections:
        if not members:
            continue
        if slots:
            x += 0.6  # a gap between sections
        headings.append((x + (len(members) - 1) / 2, heading))
        for member in members:
            slots.append(member)
            positions.append(x)
            x += 1.0

    width = 0.8 / max(len(runs), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.9 * len(slots) + 0.2 * len(runs) * len(slots)), 4.5))
    for index, run in enumerate(runs):
        xs, heights, low_err, high_err = [], [], [], []
        for pos, (section, key, _) in zip(positions, slots):
            entry = run.summary[section].get(key)
            if entry is None:
                continue
            interval = entry[metric or run.metric]
            xs.append(pos - 0.4 + width * (index + 0.5))
            heights.append(100 * interval["mean"])
            low_err.append(100 * (interval["mean"] - interval["low"]))
            high_err.append(100 * (interval["high"] - interval["mean"]))
        ax.bar(xs, heights, width, yerr=[low_err, high_err], capsize=2, label=run.name)
    for pos, (section, key, _) in zip(positions, slots):
        entry = next(r.summary[section][key] for r in runs if key in r.summary[section])
        if entry["chance"] is not None:
            ax.hlines(100 * entry["chance"], pos - 0.45, pos + 0.45, colors="black", linewidth=1.5)
    ax.set_xticks(positions, [label for _, _, label in slots], rotation=30, ha="right")
    ax.set_ylabel(f"accuracy % ({metric or runs[0].metric})")
    ax.set_ylim(0, 112)
    for centre, heading in headings:
        ax.text(centre, 106, heading, ha="center", va="center", fontsize="small", style="italic")
    ax.set_title(title or "accuracy per domain (bars: 95% interval; black ticks: chance)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_curves(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], path: str | Path, *, x: str = "step", title: str = ""
) -> Path:
    """One small panel per ``key``: ``row[key]`` against ``row[x]`` over ``rows`` (missing values skipped).

    Used for training logs such as GRPO's per-step reward components. Returns ``path`` (Agg backend).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, max(len(keys), 1))
    lines = -(-len(keys) // columns) if keys else 1
    fig, axes = plt.subplots(lines, columns, figsize=(4.0 * columns, 2.8 * lines), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(row[x], row[key]) for row in rows if row.get(key) is not None and row.get(x) is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 40 else None)
        ax.set_title(key, fontsize="small")
        ax.set_xlabel(x, fontsize="small")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    """Lay out, write ``fig`` as a PNG at ``path`` (folders made) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
