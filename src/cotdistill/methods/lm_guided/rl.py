"""Stage 2: GRPO (TRL ``GRPOTrainer``) on the rationale model, starting from the KD model.

Each training row is a plain-text ``prompt`` (the rationale model's prompt) plus the columns the
rewards read (``question``, ``context``, ``answer``, ``supporting``). Every reward component is
its own TRL reward function (logged as ``rewards/<name>/mean``, to ``report_to`` trackers too), combined with the configured
weights through ``GRPOConfig.reward_weights``. The KL penalty (``beta``) is taken against the KD
model: for a full model it is saved to ``<output_dir>/reference`` and TRL loads its reference
from there; for a LoRA model TRL copies the KD adapter as the frozen reference adapter.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.io import atomic_write_text
from cotdistill.methods.base import TrainConfig
from cotdistill.methods.checkpoints import TRAINER_FILES, last_complete_checkpoint
from cotdistill.methods.lm_guided.rewarder import Rewarder
from cotdistill.methods.tracking import report_to_field, run_name_field
from cotdistill.methods.training_args import build_training_args, training_precision
from cotdistill.methods.trl_fused_head import compact_fused_head
from cotdistill.mixed_precision import make_trainer
from cotdistill.precision import PRECISION_HELP, Precision, ResolvedPrecision, legacy_precision, master_weights_field

log = logging.getLogger(__name__)

SCALE_REWARDS = ("group", "batch", "none")


@dataclass
class RLConfig:
    """GRPO settings for the rationale model."""

    max_steps: int = field(default=20, metadata={"help": "optimizer steps of GRPO"})
    prompts_per_step: int = field(
        default=2, metadata={"help": "questions per step (each gets num_generations rationales)"}
    )
    num_generations: int = field(default=4, metadata={"help": "rationales sampled per question (the GRPO group)"})
    max_completion_length: int = field(default=64, metadata={"help": "tokens per sampled rationale"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the rationale model"})
    lr: float = field(default=5e-6, metadata={"help": "learning rate"})
    scheduler: str = field(
        default="constant_with_warmup",
        metadata={"help": "learning-rate schedule (transformers name: constant_with_warmup, linear, cosine, ...)"},
    )
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of the steps with linear warm-up"})
    scale_rewards: str = field(
        default="batch",
        metadata={"help": "advantage scaling: group (each group's std), batch (the batch's std) or none"},
    )
    mask_truncated_completions: bool = field(
        default=True, metadata={"help": "rationales cut at max_completion_length get no loss"}
    )
    beta: float = field(default=0.04, metadata={"help": "KL penalty to the KD model (0 disables the reference)"})
    loss_type: str = field(default="dapo", metadata={"help": "TRL GRPO loss: grpo | dr_grpo | dapo | bnpo | ..."})
    logging_steps: int = field(default=1, metadata={"help": "log rewards every N steps"})
    save_steps: int = field(default=10, metadata={"help": "checkpoint every N steps (resume continues from the last)"})
    precision: Precision = field(default=Precision.AUTO, metadata={"help": PRECISION_HELP})
    bf16: bool | None = field(default=None, metadata={"help": "deprecated: write precision: bf16 (or fp32)"})
    master_weights: bool = master_weights_field()
    save_total_limit: int = field(default=2, metadata={"help": "step checkpoints kept on disk"})
    seed: int = field(default=0, metadata={"help": "seed for sampling and data order"})
    report_to: str = report_to_field()
    run_name: str = run_name_field()

    def __post_init__(self) -> None:
        self.precision = legacy_precision("bf16", self.bf16, self.precision)
        self.bf16 = None
        for name in ("max_steps", "prompts_per_step", "max_completion_length", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError(f"num_generations must be >= 2 (GRPO compares a group), got {self.num_generations}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.lr <= 0 or self.beta < 0:
            raise ValueError(f"need lr > 0 and beta >= 0, got lr={self.lr}, beta={self.beta}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise ValueError(f"scale_rewards must be one of {', '.join(SCALE_REWARDS)}, got {self.scale_rewards!r}")
        self.train_config()  # TrainConfig checks the shared fields

    def train_config(self) -> TrainConfig:
        """The shared train settings of GRPO; a batch is ``prompts_per_step * num_generations`` completions."""
        return TrainConfig(
            max_steps=self.max_steps,
            lr=self.lr,
            batch_size=self.prompts_per_step * self.num_generations,
            warmup_ratio=self.warmup_ratio,
            logging_steps=self.logging_steps,
            save_steps=self.save_steps,
            save_total_limit=self.save_total_limit,
            precision=self.precision,
            master_weights=self.master_weights,
            seed=self.seed,
            report_to=self.report_to,
            run_name=self.run_name,
        )


def grpo_config(
    cfg: RLConfig,
    output_dir: Path,
    reward_weights: list[float],
    model: Any = None,
    precision: ResolvedPrecision | None = None,
) -> Any:
    """TRL ``GRPOConfig`` for ``cfg`` from ``build_training_args``; ``cfg.precision`` is resolved for
    ``model`` unless ``precision`` is given."""
    from trl import GRPOConfig

    return build_training_args(
        cfg.train_config(),
        output_dir / "checkpoints",
        args_cls=GRPOConfig,
        model=model,
        precision=precision,
        purpose="grpo training",
        precision_key="rl.precision",
        scheduler=cfg.scheduler,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        scale_rewards=cfg.scale_rewards,
        mask_truncated_completions=cfg.mask_truncated_completions,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        reward_weights=reward_weights,
        save_only_model=False,
    )


def train_grpo(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    rewarder: Rewarder,
    cfg: RLConfig,
    output_dir: str | Path,
    *,
    resume: bool = False,
) -> Any:
    """Run GRPO on ``model`` (a HF model or PEFT model) and return the trained model.

    Writes ``<output_dir>/reward_log.jsonl`` (one line per logged step: loss, KL, every reward
    component's mean and the weighted total) and the trainer's checkpoints.
    """
    from datasets import Dataset
    from peft import PeftModel
    from trl import GRPOTrainer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.beta > 0 and not isinstance(model, PeftModel):
        reference = output_dir / "reference"
        if not (reference / "config.json").exists():
            model.save_pretrained(reference, safe_serialization=True)
        model.config._name_or_path = str(reference)  # TRL builds the KL reference from this path
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    precision = training_precision(cfg.train_config(), model, key="rl.precision")
    trainer = make_trainer(
        GRPOTrainer,
        precision,
        model=model,
        reward_funcs=rewarder.trl_reward_funcs(),
        args=grpo_config(cfg, output_dir, rewarder.weights(), precision=precision),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    last = last_complete_checkpoint(output_dir / "checkpoints", TRAINER_FILES) if resume else None
    with compact_fused_head():  # score only the completion positions, on a CPU too
        trainer.train(resume_from_checkpoint=last)
    _write_reward_log(trainer.state.log_history, rewarder.active, output_dir / "reward_log.jsonl")
    return trainer.model


def _write_reward_log(history: list[dict[str, Any]], components: list[str], path: Path) -> None:
    keep = (
        "step",
        "loss",
        "kl",
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "learning_rate",
        "completions/mean_length",
        "completions/clipped_ratio",
    )
    lines = []
    for entry in history:
        if "reward" not in entry:
            continue
        row = {k: entry[k] for k in keep if k in entry}
        row.update({name: entry.get(f"rewards/{name}/mean") for name in components})
        lines.append(json.dumps(row))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
