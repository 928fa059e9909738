"""``method: lm_guided``: KD then GRPO of the student as a rationale model for a frozen reasoner.

Usable wherever a method is (e.g. a variant of the ``cot`` pipeline): the labelled examples'
rationales are distilled with ``sft`` (stage 1), then GRPO (stage 2) rewards the student's
rationales by what the reasoner answers from them. Examples with ``meta["context"]`` (multi-hop)
show the context to both models; others use the question alone. Prompts use
``data.instruction(domain)``, as the ``cot`` evaluation does. The ``lm_guided`` pipeline runs the
same two stages with a checkpoint after each and the full comparison table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.methods.base import TrainConfig, TrainData, register_method
from cotdistill.methods.lm_guided.data import guided_example, rl_rows
from cotdistill.methods.lm_guided.reasoner import Reasoner, ReasonerConfig, default_reasoner, resolve_reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rl import RLConfig, train_grpo
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.precision import Precision
from cotdistill.teachers import TeacherConfig, build_teacher


@dataclass
class LMGuidedConfig:
    """The reasoner and the two stages."""

    reasoner: TeacherConfig = field(
        default_factory=default_reasoner,
        metadata={"help": "the frozen reasoner's backend; hf `model` may name a pulled preset"},
    )
    reasoner_prompt: ReasonerConfig = field(default_factory=ReasonerConfig, metadata={"help": "reasoner prompting"})
    sft: SFTMethodConfig = field(default_factory=SFTMethodConfig, metadata={"help": "stage 1 (KD) sft options"})
    rl: RLConfig = field(
        default_factory=RLConfig,
        metadata={"help": "stage 2 (GRPO); its seed, report_to and run_name come from the shared train settings"},
    )
    rewards: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "reward weights"})


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
        kd_data = TrainData(labelled=labelled, unlabelled=data.unlabelled, instructions=data.instructions)
        student = SFT().train(student, kd_data, train, config.sft, output_dir / "kd", resume=resume)
        teacher = build_teacher(resolve_reasoner(config.reasoner))
        reasoner = Reasoner(teacher, config.reasoner_prompt, output_dir / "reasoner_cache.jsonl")
        try:
            rows = rl_rows(
                data.labelled, lambda e: student.prompt(guided_example(e).question, data.instruction(e.domain))
            )
            precision = train.precision if config.rl.precision is Precision.AUTO else config.rl.precision
            tracking = {"report_to": train.report_to, "run_name": f"{train.run_name}/rl" if train.run_name else ""}
            rl = RLConfig(**{**vars(config.rl), "seed": train.seed, "precision": precision, **tracking})
            student.model = train_grpo(
                student.model,
                student.tokenizer,
                rows,
                Rewarder(reasoner, config.rewards),
                rl,
                output_dir / "rl",
                resume=resume,
            )
        finally:
            reasoner.close()
        return student
