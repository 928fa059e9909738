"""Per-domain and per-group accuracy with bootstrap intervals, plus the chance comparison.

Input is a correctness matrix per domain, shape ``(n_seeds, n_examples)`` for each metric
(``strict``/``flexible``), the domain roles (``source``, ``target_near``, ``target_far``) and
each domain's chance accuracy. Output is plain JSON-ready data shared by ``cotdistill eval``
reports and the ``cot`` pipeline's method comparison:

```
{"domains": {d: {"role", "n", "seeds", "strict": Interval, "flexible": Interval, "chance"}},
 "groups":  {g: {"domains": [...], "strict": Interval, "flexible": Interval, "chance"}}}
```
Groups: ``in_domain`` (source), ``out_of_domain`` (every target), ``target_near``, ``target_far``;
a group with no domains is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cotdistill.eval.stats import Interval, bootstrap_ci, bootstrap_macro_ci
from cotdistill.tasks.suite import Role

ROLES = tuple(Role)
METRICS = ("strict", "flexible")
GROUPS: dict[str, tuple[Role, ...]] = {
    "in_domain": (Role.SOURCE,),
    "out_of_domain": (Role.TARGET_NEAR, Role.TARGET_FAR),
    "target_near": (Role.TARGET_NEAR,),
    "target_far": (Role.TARGET_FAR,),
}
GROUP_TITLES = {
    "in_domain": "in-domain (source)",
    "out_of_domain": "out-of-domain (all targets)",
    "target_near": "near targets",
    "target_far": "far targets",
}


def summarize(
    correct: Mapping[str, Mapping[str, np.ndarray]],
    roles: Mapping[str, str],
    chance: Mapping[str, float | None],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Summarise ``correct[metric][domain]`` 0/1 matrices ``(seeds, examples)`` into intervals.

    ``chance[domain]`` is None for open answers (numbers, text, lists), where no constant answer
    is a meaningful baseline; a group's chance is None when any of its domains has none.
    """
    domains = list(correct[METRICS[0]])
    for domain in domains:
        if roles.get(domain) not in ROLES:
            raise ValueError(f"domain '{domain}' has role {roles.get(domain)!r}; expected one of {', '.join(ROLES)}")
    kwargs = {"n_resamples": n_resamples, "confidence": confidence}
    out: dict[str, Any] = {"domains": {}, "groups": {}}
    for index, domain in enumerate(domains):
        matrix = np.asarray(correct[METRICS[0]][domain])
        entry: dict[str, Any] = {
            "role": roles[domain],
            "n": int(matrix.shape[-1]),
            "seeds": int(np.atleast_2d(matrix).shape[0]),
        }
        for metric in METRICS:
            entry[metric] = bootstrap_ci(correct[metric][domain], seed=seed + index, **kwargs).to_dict()
        entry["chance"] = None if chance[domain] is None else float(chance[domain])
        out["domains"][domain] = entry
    for group_index, (group, group_roles) in enumerate(GROUPS.items()):
        members = [d for d in domains if roles[d] in group_roles]
        if not members:
            continue
        entry = {"domains": members}
        for metric in METRICS:
            matrices = [correct[metric][d] for d in members]
            entry[metric] = bootstrap_macro_ci(matrices, seed=seed + 1000 + group_index, **kwargs).to_dict()
        values = [chance[d] for d in members]
        entry["chance"] = None if any(v is None for v in values) else float(np.mean(values))
        out["groups"][group] = entry
    return out


def format_chance(chance: float | None) -> str:
    """A chance baseline in percent, or ``n/a`` for open answers."""
    return "n/a" if chance is None else f"{100 * chance:.1f}"


def chance_verdict(summary: Mapping[str, Any], group: str, metric: str) -> str:
    """One sentence saying whether a group's accuracy is above its chance baseline."""
    entry = summary["groups"].get(group)
    if entry is None:
        return f"no {GROUP_TITLES[group]} domains were evaluated."
    interval = Interval.from_dict(entry[metric])
    chance = entry["chance"]
    if chance is None:
        return f"{GROUP_TITLES[group]} {metric} accuracy {interval.format()}: no chance baseline (open answers)."
    head = f"{GROUP_TITLES[group]} {metric} accuracy {interval.format()} vs chance {100 * chance:.1f}"
    if interval.low > chance:
        return f"{head}: clearly above chance (the whole interval is above it)."
    if interval.mean > chance:
        return f"{head}: above chance in the mean, but the interval reaches chance."
    return f"{head}: not above chance."


def paired_difference(
    baseline: Mapping[str, Mapping[str, np.ndarray]],
    other: Mapping[str, Mapping[str, np.ndarray]],
    roles: Mapping[str, str],
    **kwargs: Any,
) -> dict[str, Any]:
    """``other - baseline`` per domain and group, paired over seeds and examples.

    Both map ``metric -> domain -> (seeds, examples)`` 0/1 matrices over the same seeds (rows in the
    same order) and the same test examples; the difference matrices are bootstrapped as
    ``summarize`` does, so each resample draws the same seeds and examples for both methods.
    The output has ``summarize``'s shape (intervals of differences; ``chance`` is 0).
    """
    difference: dict[str, dict[str, np.ndarray]] = {}
    for metric in METRICS:
        difference[metric] = {}
        for domain, matrix in baseline[metric].items():
            a, b = np.atleast_2d(np.asarray(matrix, dtype=float)), np.atleast_2d(np.asarray(other[metric][domain]))
            if a.shape != b.shape:
                raise ValueError(f"domain '{domain}': cannot pair matrices of shapes {a.shape} and {b.shape}")
            difference[metric][domain] = b - a
    return summarize(difference, roles, dict.fromkeys(baseline[METRICS[0]], 0.0), **kwargs)


def difference_verdict(difference: Mapping[str, Any], group: str, metric: str, name: str, baseline: str) -> str:
    """One sentence saying whether ``name - baseline`` on a group can be told apart from zero."""
    entry = difference["groups"].get(group)
    if entry is None:
        return f"no {GROUP_TITLES[group]} domains were evaluated."
    interval = Interval.from_dict(entry[metric])
    head = f"{name} - {baseline}, {GROUP_TITLES[group]}, {metric}: {interval.format()} points (paired)"
    if interval.low > 0:
        return f"{head}: {name} is better; the whole interval is above zero."
    if interval.high < 0:
        return f"{head}: {name} is worse; the whole interval is below zero."
    return f"{head}: the interval contains zero, so the difference cannot be told apart from zero."
