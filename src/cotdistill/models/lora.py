"""LoRA adapters (PEFT) for a student model."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class StudentLoRAConfig:
    """PEFT ``LoraConfig`` knobs used when ``finetune: lora``."""

    r: int = field(default=16, metadata={"help": "adapter rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the adapter input"})
    target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "module names to adapt; ['all-linear'] adapts every linear layer but the LM head"},
    )

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module")


def apply_lora(model: nn.Module, settings: StudentLoRAConfig) -> nn.Module:
    """Wrap ``model`` in a PEFT LoRA model; only the adapter weights stay trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets: str | list[str] = "all-linear" if settings.target_modules == ["all-linear"] else settings.target_modules
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
    )
    return get_peft_model(model, config)
