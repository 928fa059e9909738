"""ReDis (arXiv 2504.10647): reasoning distillation for rule-induction tasks.

Stage 1 ``augment`` (teacher rules scored by rule following), stage 2 ``pairs.build``
(dedupe, margin pairs, SFT sets), stages 3-4 ``train.sft`` then ``train.align`` (ORPO/DPO via
TRL), inference ``search.hypothesis_search``. ``RuleOracle`` is the offline teacher for
generated tasks. The ``redis`` pipeline (``cotdistill.pipelines.redis``) runs them end to end.
"""

from cotdistill.methods.redis.augment import AugmentConfig, ScoredRule, TaskRules, augment, load_task_rules
from cotdistill.methods.redis.oracle import RuleOracle
from cotdistill.methods.redis.pairs import DEFAULT_MARGINS, FilterConfig, PreferencePair, SFTItem, build, make_pairs
from cotdistill.methods.redis.search import SearchConfig, TaskResult, direct_answers, hypothesis_search
from cotdistill.methods.redis.train import ReDisTrainConfig, align, sft

__all__ = [
    "DEFAULT_MARGINS",
    "AugmentConfig",
    "FilterConfig",
    "PreferencePair",
    "ReDisTrainConfig",
    "RuleOracle",
    "SFTItem",
    "ScoredRule",
    "SearchConfig",
    "TaskResult",
    "TaskRules",
    "align",
    "augment",
    "build",
    "direct_answers",
    "hypothesis_search",
    "load_task_rules",
    "make_pairs",
    "sft",
]
