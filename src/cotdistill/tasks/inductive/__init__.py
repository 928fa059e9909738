"""Rule-induction tasks (ACRE, List Functions, 1D-ARC, MiniSCAN) in the ReDis / Qiu et al. format.

``DOMAINS`` maps a domain name to its generator/codec; ``sample_tasks`` generates tasks with
known rules; ``load_rule_tasks`` / ``write_rule_tasks`` read and write real JSONL files. Each
domain is also a registered CoT task (``acre``, ``list_functions``, ``arc1d``, ``miniscan``)
and a file task (``<domain>_file``).
"""

from cotdistill.tasks.inductive.base import (
    DOMAINS,
    Domain,
    GeneratedTask,
    Pair,
    Rule,
    RuleError,
    RuleTask,
    format_pairs,
    format_question,
    get_domain,
    sample_tasks,
)
from cotdistill.tasks.inductive.redis_format import load_rule_tasks, task_to_dict, write_rule_tasks

__all__ = [
    "DOMAINS",
    "Domain",
    "GeneratedTask",
    "Pair",
    "Rule",
    "RuleError",
    "RuleTask",
    "format_pairs",
    "format_question",
    "get_domain",
    "load_rule_tasks",
    "sample_tasks",
    "task_to_dict",
    "write_rule_tasks",
]
