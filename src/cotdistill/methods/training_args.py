"""The one place a ``TrainConfig`` becomes ``TrainingArguments`` (or a TRL config) for every trainer.

``build_training_args(train, output_dir, args_cls=..., **extras)`` maps the shared fields (steps,
epochs, learning rate and schedule, batch, accumulation, clipping, logging, checkpoints, seed,
precision, tracking, progress) the same way for the ``sft`` trainer (``TrainingArguments``),
ReDis (TRL ``SFTConfig``, ``ORPOConfig``, ``DPOConfig``) and GRPO (TRL ``GRPOConfig``); a method
adds only its own arguments as ``extras``. The precision is resolved and announced here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import TrainingArguments

from cotdistill.methods.base import TrainConfig
from cotdistill.methods.tracking import tracking_arguments
from cotdistill.precision import (
    ResolvedPrecision,
    announce,
    resolve_precision,
    trainer_flags,
    training_device,
    with_master_weights,
)

ArgsT = TypeVar("ArgsT", bound=TrainingArguments)


def training_precision(train: TrainConfig, model: Any = None, *, key: str = "train.precision") -> ResolvedPrecision:
    """``train.precision`` resolved for ``model`` on the training device, with ``train.master_weights``
    applied (bf16 runs only); a ``ConfigError`` naming ``key`` when the device cannot run it."""
    precision = resolve_precision(train.precision, model, training_device(), key=key)
    return with_master_weights(precision, train.master_weights, key=key.rsplit(".", 1)[0] + ".master_weights")


def build_training_args(
    train: TrainConfig,
    output_dir: str | Path,
    *,
    args_cls: type[ArgsT] = TrainingArguments,
    model: Any = None,
    purpose: str = "training",
    precision_key: str = "train.precision",
    scheduler: str = "linear",
    run_suffix: str = "",
    precision: ResolvedPrecision | None = None,
    **extras: Any,
) -> ArgsT:
    """``args_cls`` from ``train`` plus the method's own ``extras``.

    ``train.precision`` is resolved by ``training_precision`` (a ``ConfigError`` naming
    ``precision_key`` when the device cannot run it) and announced once as ``purpose``;
    ``scheduler`` is the transformers learning-rate schedule; ``run_suffix`` is appended to
    ``train.run_name`` (a stage inside one run). Activation checkpointing stays off (TRL's configs
    default it on). ``precision``, when given, is used instead of resolving ``train.precision``
    (the trainer needs it too: ``mixed_precision.make_trainer``). An extra that names a shared
    argument is a ``TypeError``: those come from ``train`` only, so every trainer maps them alike.
    """
    if precision is None:
        precision = training_precision(train, model, key=precision_key)
    announce(precision, purpose)
    shared = {
        "output_dir": str(output_dir),
        "max_steps": train.max_steps,
        "num_train_epochs": train.epochs,
        "learning_rate": train.lr,
        "lr_scheduler_type": scheduler,
        "warmup_steps": train.warmup_ratio,  # a float in [0, 1) is a share of the steps
        "weight_decay": train.weight_decay,
        "max_grad_norm": train.max_grad_norm,
        "per_device_train_batch_size": train.batch_size,
        "gradient_accumulation_steps": train.grad_accum,
        "average_tokens_across_devices": True,
        "logging_steps": train.logging_steps,
        "save_strategy": "steps" if train.save_steps else "no",
        "save_steps": train.save_steps or 500,
        "save_total_limit": train.save_total_limit,
        "seed": train.seed,
        **trainer_flags(precision),
        "use_cpu": not torch.accelerator.is_available(),  # multi-process CPU runs then use gloo DDP
        **tracking_arguments(train.report_to, train.run_name, suffix=run_suffix),
        "disable_tqdm": not train.progress,
    }
    clash = sorted(shared.keys() & extras.keys())
    if clash:
        raise TypeError(f"build_training_args: {', '.join(clash)} come from the TrainConfig, not from extras")
    if getattr(args_cls, "gradient_checkpointing", None):
        shared["gradient_checkpointing"] = False
    return args_cls(**shared, **extras)
