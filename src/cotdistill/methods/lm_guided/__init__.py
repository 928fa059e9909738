"""LM-Guided CoT (arXiv 2404.03414): a small rationale model guides a frozen reasoner.

A registered method (``method: lm_guided``) whose stages the ``lm_guided`` pipeline composes:
stage 1 ``teacher_rationales`` + ``distill`` (KD of teacher rationales), stage 2 ``reinforce``
(GRPO on rewards computed through the reasoner: ``rewards``, ``rewarder``), then
``evaluate_rationale_models`` (the reasoner answers from k rationales with a majority vote).
"""

from cotdistill.methods.lm_guided.data import RATIONALE_INSTRUCTION, guided_example, query
from cotdistill.methods.lm_guided.inference import (
    Condition,
    LMGuidedEvalConfig,
    evaluate,
    evaluate_rationale_models,
    paired_table,
    table,
)
from cotdistill.methods.lm_guided.kd import distill, teacher_rationales
from cotdistill.methods.lm_guided.method import (
    LMGuided,
    LMGuidedConfig,
    LMGuidedReasonerConfig,
    open_reasoner,
    reinforce,
)
from cotdistill.methods.lm_guided.reasoner import Query, Reasoner, ReasonerConfig, resolve_reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rl import RLConfig

__all__ = [
    "RATIONALE_INSTRUCTION",
    "Condition",
    "LMGuided",
    "LMGuidedConfig",
    "LMGuidedEvalConfig",
    "LMGuidedReasonerConfig",
    "Query",
    "RLConfig",
    "Reasoner",
    "ReasonerConfig",
    "RewardConfig",
    "Rewarder",
    "distill",
    "evaluate",
    "evaluate_rationale_models",
    "guided_example",
    "open_reasoner",
    "paired_table",
    "query",
    "reinforce",
    "resolve_reasoner",
    "table",
    "teacher_rationales",
]
