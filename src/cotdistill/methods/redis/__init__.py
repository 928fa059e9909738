"""ReDis (arXiv 2504.10647): reasoning distillation for rule-induction tasks.

ReDis is a multi-stage workflow, not a registered method: it trains several students (IO-SFT,
rule SFT, + ORPO / + DPO) on rule tasks rather than one student on ``TrainData``, so it runs as
the ``redis`` pipeline (``cotdistill.pipelines.redis``), which composes the stages exposed here:

1. ``augment`` (teacher rules scored by rule following; ``RuleOracle`` is the offline teacher
   for generated tasks);
2. ``build`` (dedupe, margin pairs, SFT sets: ``Stage2``), ``io_items`` (the IO-SFT baseline's
   data) and ``tokenizer_corpus``;
3. ``sft`` then 4. ``align`` (ORPO/DPO via TRL);
5. inference: ``hypothesis_search`` and ``direct_answers``, scored by ``accuracy_table`` /
   ``accuracy_by_type``.
"""

from cotdistill.methods.redis.augment import AugmentConfig, ScoredRule, TaskRules, augment, load_task_rules
from cotdistill.methods.redis.oracle import RuleOracle
from cotdistill.methods.redis.pairs import (
    DEFAULT_MARGINS,
    FilterConfig,
    PreferencePair,
    SFTItem,
    Stage2,
    build,
    io_items,
    make_pairs,
    tokenizer_corpus,
)
from cotdistill.methods.redis.prompts import direct_prompt, output_target
from cotdistill.methods.redis.search import (
    SearchConfig,
    TaskResult,
    accuracy_by_type,
    accuracy_table,
    direct_answers,
    hypothesis_search,
)
from cotdistill.methods.redis.train import AlignLoss, ReDisTrainConfig, align, sft

__all__ = [
    "DEFAULT_MARGINS",
    "AlignLoss",
    "AugmentConfig",
    "FilterConfig",
    "PreferencePair",
    "RuleOracle",
    "SFTItem",
    "ScoredRule",
    "SearchConfig",
    "Stage2",
    "TaskResult",
    "TaskRules",
    "ReDisTrainConfig",
    "accuracy_by_type",
    "accuracy_table",
    "align",
    "augment",
    "build",
    "direct_answers",
    "direct_prompt",
    "hypothesis_search",
    "io_items",
    "load_task_rules",
    "make_pairs",
    "output_target",
    "sft",
    "tokenizer_corpus",
]
