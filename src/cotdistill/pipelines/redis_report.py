"""``report.json`` / ``report.md`` of the ``redis`` pipeline: accuracy per method and domain (and per query type)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotdistill.config import to_dict
from cotdistill.console import format_table
from cotdistill.io import atomic_write_json, atomic_write_text
from cotdistill.methods.redis.pairs import Stage2
from cotdistill.methods.redis.search import TaskResult, accuracy_by_type, accuracy_table
from cotdistill.report.render import render_comparison
from cotdistill.tasks.inductive import DOMAINS

if TYPE_CHECKING:
    from cotdistill.pipelines.redis import ReDisConfig


def write_report(results: dict[str, list[TaskResult]], stage2: Stage2, config: ReDisConfig, output_dir: Path) -> Path:
    """``report.json`` and ``report.md`` with the per-domain accuracy table; the table is also printed."""
    domains = list(config.data.domains)
    tables = {name: accuracy_table(rows) for name, rows in results.items()}
    headers = ["method", *domains, "all"]
    body = []
    for name in results:
        row = tables[name]
        body.append([name] + [_cell(row.get(d)) for d in [*domains, "all"]])
    report = {
        "kind": "comparison",
        "pipeline": "redis",
        "title": "ReDis: exact match on the unseen queries of held-out tasks",
        "metric": "strict",
        "runs": {name: _run_entry(name, rows, domains, config.seed) for name, rows in results.items()},
        "table": tables,
        "by_type": {name: accuracy_by_type(rows) for name, rows in results.items()},
        "best_rules": {
            name: {r.task_idx: r.rule for r in rows if r.rule is not None} for name, rows in results.items()
        },
        "stage2": {
            "pairs": len(stage2.pairs),
            "rule_generation": len(stage2.rule_generation),
            "rule_following": len(stage2.rule_following),
            "domains": stage2.stats,
        },
        "config": to_dict(config),
    }
    atomic_write_json(output_dir / "report.json", report)
    text = format_table(headers, body)
    lines = [
        "# ReDis: accuracy on unseen tasks",
        "",
        "Exact match of the parsed output, micro-averaged over the unseen queries of the test tasks.",
        "",
        "```",
        text,
        "```",
        "",
        "- `direct`: base student answers from the seen pairs; `hs_base`: hypothesis search with the base student;",
        "- `io_sft`: student fine-tuned on input -> output; `redis_sft`: ReDis after SFT only;",
        f"- `redis`: ReDis after SFT + {config.train.align.upper()} (hypothesis search with "
        f"{config.search.num_rules} sampled rules; ties: most sampled, then first).",
        "",
        f"Stage 2: {len(stage2.pairs)} preference pairs, {len(stage2.rule_generation)} rule-generation and "
        f"{len(stage2.rule_following)} rule-following SFT items.",
        "",
        *_type_section(report["by_type"]),
    ]
    atomic_write_text(output_dir / "report.md", "\n".join(lines) + "\n" + render_comparison(report))
    print(text)
    print(f"\nreport: {output_dir / 'report.md'} (and report.json)")
    return output_dir


def _run_entry(name: str, results: list[TaskResult], domains: list[str], seed: int) -> dict[str, Any]:
    """One method in the shape ``cotdistill report`` reads (every domain in-domain; strict = flexible)."""
    import numpy as np

    from cotdistill.eval.summary import summarize

    correct = {d: np.array([[c for r in results if r.domain == d for c in r.correct]], dtype=float) for d in domains}
    present = [d for d in domains if correct[d].size]
    matrices = {d: correct[d] for d in present}
    chance = {d: 1.0 / len(DOMAINS.get(d).labels) if DOMAINS.get(d).labels else None for d in present}
    summary = summarize({"strict": matrices, "flexible": matrices}, dict.fromkeys(present, "source"), chance, seed=seed)
    mean = float(np.mean([correct[d].mean() for d in present])) if present else 0.0
    per_seed = {str(seed): {"in_domain": {"strict": mean, "flexible": mean}}}
    return {"method": name, "seeds": [seed], "summary": summary, "per_seed": per_seed}


def _cell(row: dict[str, float] | None) -> str:
    if not row:
        return "-"
    return f"{100 * row['accuracy']:.1f} ({int(row['correct'])}/{int(row['total'])})"


def _type_section(by_type: dict[str, dict[str, dict[str, dict[str, float]]]]) -> list[str]:
    """Accuracy per query type (ACRE files: direct, indirect, screen_off, potential), if any."""
    rows = [
        [name, domain, kind, _cell(row)]
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
