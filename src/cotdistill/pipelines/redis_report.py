"""The ``redis`` pipeline's report: accuracy per method and domain, intervals, majority baseline.

``results[method]`` holds one list of ``TaskResult`` per run of the method (one per search seed
for hypothesis search, one for greedy direct answering). ``report.json`` (written by
``pipelines.outputs``: ``kind: comparison``, read by ``cotdistill report``) has ``table[method][domain] = {accuracy, correct, total, seeds}``
pooled over the runs, ``majority[domain]`` (always giving the domain's most common unseen output),
``runs[method].summary`` with a 95% bootstrap interval per domain over (seeds, queries) and the
majority baseline as each domain's chance, ``best_rules`` (first seed), ``by_type[method][domain][query type]`` (files that give a per-query type,
such as ACRE's), ``differences`` (the ``PAIRED`` differences query by query), the stage-2 counts and ``timings_s`` (wall seconds per stage, summed over resumed
processes; see ``pipelines.timing``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from cotdistill.config import to_dict
from cotdistill.console import format_table
from cotdistill.eval.stats import Interval, bootstrap_macro_ci
from cotdistill.eval.summary import summarize
from cotdistill.methods.redis import Stage2, TaskResult, accuracy_by_type, accuracy_table
from cotdistill.pipelines.outputs import CHART_PNG, run_report
from cotdistill.report.render import render_comparison
from cotdistill.tasks.inductive import DOMAINS, RuleTask, get_domain
from cotdistill.tasks.suite import Role

TITLE = "ReDis: exact match on the unseen queries of held-out tasks"
PAIRED = (("redis_sft", "hs_base"), ("redis_sft", "io_sft"), ("redis_orpo", "redis_sft"), ("redis_dpo", "redis_sft"))
"""The paper's claims as (method, baseline): rule SFT beats base-model search and IO-SFT; alignment beats SFT."""


def stage2_summary(stage2: Stage2) -> dict[str, Any]:
    """Counts of what stage 2 kept, overall and per domain."""
    return {
        "pairs": len(stage2.pairs),
        "rule_generation": len(stage2.rule_generation),
        "rule_following": len(stage2.rule_following),
        "domains": stage2.stats,
    }


def majority_baseline(test: Sequence[RuleTask], domains: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per domain (and ``all``): accuracy of always answering the domain's most common unseen output."""
    table: dict[str, dict[str, float]] = {}
    for domain in domains:
        outputs = [get_domain(domain).normalize(p.output) for t in test if t.domain == domain for p in t.test]
        top = Counter(outputs).most_common(1)[0][1] if outputs else 0
        labels = DOMAINS.get(domain).labels
        uniform = len(outputs) / len(labels) if labels else 0.0
        table[domain] = _row(max(top, uniform), len(outputs))
    correct, total = sum(r["correct"] for r in table.values()), sum(r["total"] for r in table.values())
    table["all"] = _row(correct, total)
    return table


def pooled_table(runs: Sequence[Sequence[TaskResult]]) -> dict[str, dict[str, float]]:
    """``accuracy_table`` over every run of a method, with the number of runs as ``seeds``."""
    table = accuracy_table([r for results in runs for r in results])
    return {key: {**row, "seeds": len(runs)} for key, row in table.items()}


def _row(correct: float, total: int) -> dict[str, float]:
    return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total}


def build_report(
    results: dict[str, list[list[TaskResult]]],
    test: Sequence[RuleTask],
    stage2: Stage2,
    config: Any,
    timings: dict[str, float] | None = None,
) -> tuple[dict[str, Any], str, str]:
    """The data of ``report.json`` (see the module docstring), ``report.md`` and the console table;
    ``timings`` (seconds per stage) becomes ``timings_s``."""
    domains = list(config.data.domains)
    majority = majority_baseline(test, domains)
    chance = {d: majority[d]["accuracy"] for d in domains}
    runs = {name: _run_entry(name, runs, domains, chance, config) for name, runs in results.items()}
    data = {
        "metric": "strict",
        "runs": runs,
        "table": {name: pooled_table(rows) for name, rows in results.items()},
        "majority": majority,
        "by_type": {name: accuracy_by_type([r for run in rows for r in run]) for name, rows in results.items()},
        "best_rules": {
            name: {r.task_idx: r.rule for r in rows[0] if r.rule is not None} for name, rows in results.items()
        },
        "differences": paired_differences(results, domains, config.seed),
        "stage2": stage2_summary(stage2),
        "timings_s": dict(timings or {}),
        "config": to_dict(config),
    }
    report = run_report(data, pipeline="redis", title=TITLE)
    headers = ["method", "seeds", *domains, "all"]
    body = [
        [
            name,
            str(len(results[name])),
            *(_cell(runs[name]["summary"]["domains"].get(d)) for d in domains),
            _all(runs[name]),
        ]
        for name in results
    ]
    body.append(["majority answer", "-", *(f"{100 * majority[d]['accuracy']:.1f}" for d in domains), "-"])
    text = format_table(headers, body)
    n_queries = {d: int(majority[d]["total"]) for d in domains}
    lines = [
        "# ReDis: accuracy on unseen tasks",
        "",
        "Exact match of the parsed output on the unseen queries of the test tasks, in percent: mean over",
        "seeds and queries [95% bootstrap interval]; `all` is the macro average over domains.",
        f"Unseen queries: {', '.join(f'{d} {n}' for d, n in n_queries.items())} ({sum(n_queries.values())} in all).",
        "",
        "```",
        text,
        "```",
        "",
        "- `direct`: base student answers from the seen pairs; `hs_base`: hypothesis search with the base student;",
        "- `io_sft`: student fine-tuned on input -> output; `redis_sft`: ReDis after rule SFT only;",
        "- `redis_orpo` / `redis_dpo`: ReDis after rule SFT + ORPO / + DPO (hypothesis search with "
        f"{config.search.num_rules} sampled rules at temperature {config.search.temperature:g}, followed at "
        f"{config.search.apply_temperature:g}; ties: most sampled, then first; seeds {config.search.seeds});",
        "- `majority answer`: always giving the domain's most common unseen output (at least uniform guessing "
        "for label domains).",
        "",
        f"Stage 2: {len(stage2.pairs)} preference pairs, {len(stage2.rule_generation)} rule-generation and "
        f"{len(stage2.rule_following)} rule-following SFT items (rule generation: {config.filter.rule_generation}).",
        "",
        *_paired_section(report["differences"]),
        *_type_section(report["by_type"]),
    ]
    return report, "\n".join(lines) + "\n" + render_comparison(report, chart=CHART_PNG), text


def paired_differences(
    results: dict[str, list[list[TaskResult]]], domains: Sequence[str], seed: int
) -> dict[str, dict[str, float]]:
    """``"A - B"`` for each ``PAIRED`` pair that ran: the macro mean over domains of A's minus B's
    correctness on the same queries (each query's mean over the search seeds), with a 95%
    bootstrap interval that resamples queries within each domain."""
    paired = {}
    for first, second in PAIRED:
        if first not in results or second not in results:
            continue
        a, b = _per_query(results[first]), _per_query(results[second])
        groups = [a[d] - b[d] for d in domains if d in a and a[d].size]
        paired[f"{first} - {second}"] = bootstrap_macro_ci(groups, seed=seed).to_dict()
    return paired


def _per_query(runs: list[list[TaskResult]]) -> dict[str, np.ndarray]:
    """Each domain's queries (sorted by task, then query) -> correctness averaged over the runs."""
    scores: dict[tuple[str, str, int], list[float]] = {}
    for rows in runs:
        for r in rows:
            for i, c in enumerate(r.correct):
                scores.setdefault((r.domain, r.task_idx, i), []).append(float(c))
    by_domain: dict[str, list[float]] = {}
    for (domain, _, _), values in sorted(scores.items()):
        by_domain.setdefault(domain, []).append(float(np.mean(values)))
    return {d: np.array(v) for d, v in by_domain.items()}


def _paired_section(paired: dict[str, dict[str, float]]) -> list[str]:
    if not paired:
        return []
    rows = [[name, Interval.from_dict(ci).format()] for name, ci in paired.items()]
    return [
        "Paired differences on the same queries (percentage points, macro over domains, 95% bootstrap interval):",
        "",
        "```",
        format_table(["difference", "all"], rows),
        "```",
        "",
    ]


def _run_entry(
    name: str, runs: list[list[TaskResult]], domains: list[str], chance: dict[str, float], config: Any
) -> dict[str, Any]:
    """One method in the shape ``cotdistill report`` reads (every domain in-domain; strict = flexible)."""
    correct = {
        d: np.array([[c for r in rows if r.domain == d for c in r.correct] for rows in runs], dtype=float)
        for d in domains
    }
    present = [d for d in domains if correct[d].size]
    matrices = {d: correct[d] for d in present}
    roles = dict.fromkeys(present, Role.SOURCE)
    summary = summarize(
        {"strict": matrices, "flexible": matrices}, roles, {d: chance[d] for d in present}, seed=config.seed
    )
    seeds = config.search.seeds if len(runs) == len(config.search.seeds) else config.search.seeds[:1]
    per_seed = {}
    for index, seed in enumerate(seeds):
        mean = float(np.mean([correct[d][index].mean() for d in present])) if present else 0.0
        per_seed[str(seed)] = {"in_domain": {"strict": mean, "flexible": mean}}
    return {"method": name, "seeds": list(seeds), "summary": summary, "per_seed": per_seed}


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    ci = entry["strict"]
    return f"{100 * ci['mean']:.1f} [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]"


def _all(run: dict[str, Any]) -> str:
    group = run["summary"]["groups"].get("in_domain")
    return _cell(group) if group else "-"


def _type_section(by_type: dict[str, dict[str, dict[str, dict[str, float]]]]) -> list[str]:
    """Accuracy per query type (ACRE files: direct, indirect, screen_off, potential), if any."""
    rows = [
        [name, domain, kind, f"{100 * row['accuracy']:.1f} ({int(row['correct'])}/{int(row['total'])})"]
        for name, domains in by_type.items()
        for domain, kinds in domains.items()
        for kind, row in kinds.items()
    ]
    if not rows:
        return []
    return [
        "## Accuracy per query type",
        "",
        "```",
        format_table(["method", "domain", "type", "accuracy"], rows),
        "```",
        "",
    ]
