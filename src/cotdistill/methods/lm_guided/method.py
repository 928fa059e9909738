"""The KD + GRPO orchestration of LM-Guided CoT, written once, and ``method: lm_guided``.

Stage 1 (``kd.distill``) fine-tunes the rationale model on teacher rationales with the ``sft``
method; stage 2 (``reinforce``) trains it with GRPO on rewards computed through the frozen
reasoner (``open_reasoner``). The ``lm_guided`` pipeline composes these stages with a checkpoint
after each and the full comparison table; ``method: lm_guided`` runs the same two stages wherever
a method is (e.g. a variant of the ``cot`` pipeline): the labelled examples' rationales are
distilled, then GRPO rewards the student's rationales by what the reasoner answers from them.
Examples with ``meta["context"]`` (multi-hop) show the context to both models; others use the
question alone. The method prompts with ``data.instruction(domain)``, as the ``cot`` evaluation does.
Both read the same recipe sections: ``reasoner: {teacher, prompt}``, ``sft``, ``rl``, ``rewards``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.methods.base import TrainConfig, TrainData, register_method
from cotdistill.methods.lm_guided.data import RATIONALE_INSTRUCTION, guided_example, rl_rows
from cotdistill.methods.lm_guided.kd import distill
from cotdistill.methods.lm_guided.reasoner import Reasoner, ReasonerConfig, default_reasoner, resolve_reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rl import RLConfig, train_grpo
from cotdistill.methods.sft import SFTMethodConfig
from cotdistill.precision import Precision
from cotdistill.tasks import Example
from cotdistill.teachers import TeacherConfig, build_teacher


@dataclass
class LMGuidedReasonerConfig:
    """The frozen reasoner: a teacher backend plus its prompt settings."""

    teacher: TeacherConfig = field(
        default_factory=default_reasoner,
        metadata={"help": "backend of the reasoner; hf `model` may name a pulled preset (smollm2-135m-instruct)"},
    )
    prompt: ReasonerConfig = field(default_factory=ReasonerConfig, metadata={"help": "prompt and decoding settings"})


@dataclass
class LMGuidedConfig:
    """The reasoner and the two stages."""

    reasoner: LMGuidedReasonerConfig = field(
        default_factory=LMGuidedReasonerConfig, metadata={"help": "the frozen reasoner"}
    )
    sft: SFTMethodConfig = field(default_factory=SFTMethodConfig, metadata={"help": "stage 1 (KD) sft options"})
    rl: RLConfig = field(
        default_factory=RLConfig,
        metadata={"help": "stage 2 (GRPO); as a method its seed, report_to and run_name come from the train settings"},
    )
    rewards: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "reward weights"})


def open_reasoner(config: LMGuidedReasonerConfig, cache_path: Path, teacher: TeacherConfig | None = None) -> Reasoner:
    """The frozen reasoner over ``teacher`` (default: ``config.teacher`` resolved), cached in ``cache_path``."""
    return Reasoner(build_teacher(teacher or resolve_reasoner(config.teacher)), config.prompt, cache_path)


def reinforce(
    student: Any,
    examples: Sequence[Example],
    reasoner: Reasoner,
    rewards: RewardConfig,
    rl: RLConfig,
    output_dir: Path,
    *,
    instruction: Callable[[str], str | None] = lambda _domain: RATIONALE_INSTRUCTION,
    resume: bool = False,
) -> Any:
    """Stage 2: GRPO of ``student`` (in place) on ``examples``, rewarded through ``reasoner``."""
    rows = rl_rows(list(examples), lambda e: student.prompt(guided_example(e).question, instruction(e.domain)))
    rewarder = Rewarder(reasoner, rewards)
    student.model = train_grpo(student.model, student.tokenizer, rows, rewarder, rl, output_dir, resume=resume)
    return student


@register_method("lm_guided")
class LMGuided:
    Config = LMGuidedConfig

    def train(
        self,
        student: Any,
        data: TrainData,
        train: TrainConfig,
        config: LMGuidedConfig,
        output_dir: str | Path,
        *,
        resume: bool = False,
    ) -> Any:
        """KD (``output_dir/kd``) then GRPO (``output_dir/rl``); returns the trained student."""
        output_dir = Path(output_dir)
        labelled = [guided_example(e) for e in data.labelled]
        student = distill(
            student,
            labelled,
            train,
            config.sft,
            output_dir / "kd",
            instructions=data.instructions,
            unlabelled=data.unlabelled,
            resume=resume,
        )
        precision = train.precision if config.rl.precision is Precision.AUTO else config.rl.precision
        tracking = {"report_to": train.report_to, "run_name": f"{train.run_name}/rl" if train.run_name else ""}
        rl = RLConfig(**{**vars(config.rl), "seed": train.seed, "precision": precision, **tracking})
        reasoner = open_reasoner(config.reasoner, output_dir / "reasoner_cache.jsonl")
        try:
            return reinforce(
                student,
                data.labelled,
                reasoner,
                config.rewards,
                rl,
                output_dir / "rl",
                instruction=data.instruction,
                resume=resume,
            )
        finally:
            reasoner.close()
