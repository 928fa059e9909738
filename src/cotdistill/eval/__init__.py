"""Evaluation: batched generation, scoring per domain, bootstrap intervals, self-consistency."""

from cotdistill.eval.evaluate import EvalConfig, build_report, evaluate
from cotdistill.eval.scoring import ExampleResult, chance_baseline, majority_vote, score_example
from cotdistill.eval.stats import Interval, bootstrap_ci, bootstrap_macro_ci
from cotdistill.eval.summary import GROUPS, ROLES, chance_verdict, summarize

__all__ = [
    "GROUPS",
    "ROLES",
    "EvalConfig",
    "ExampleResult",
    "Interval",
    "bootstrap_ci",
    "bootstrap_macro_ci",
    "build_report",
    "chance_baseline",
    "chance_verdict",
    "evaluate",
    "majority_vote",
    "score_example",
    "summarize",
]
