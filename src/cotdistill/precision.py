"""One precision setting for every trainer and generator: ``auto | fp32 | bf16 | fp16``.

``resolve_precision(setting, model, device, purpose=train|generate)`` gives the precision a run uses:

* ``fp32``: everything in fp32.
* ``bf16``: bf16 mixed precision (autocast); on CUDA it needs a GPU with bf16, on a CPU it runs
  anywhere but is only fast with bf16 matrix instructions.
* ``fp16``: fp16 mixed precision with loss scaling, CUDA only (a ``ConfigError`` elsewhere).
* ``auto`` (the default): bf16 on a CUDA GPU with bf16; bf16 on a CPU whose flags include
  ``amx_bf16`` or ``avx512_bf16`` (``torch.cpu.get_capabilities()``, else ``/proc/cpuinfo``)
  **when the model is at least ``AUTO_BF16_MIN_HIDDEN[purpose]`` wide** (training: 128,
  generation: 256); fp32 everywhere else. Narrower models were measured no faster in bf16 on
  such a CPU (``benchmarks/results/precision_size.md``: per-token generation steps of a narrow
  model are dominated by per-op overhead, which autocast adds to), or were not measured, so they
  stay in fp32; this also keeps the tests' tiny models in fp32 on every machine.

Mixed precision keeps the master weights and optimizer states in fp32; the loss, the softmax
and the PRADA discriminator run in fp32 too. ``methods.training_args.build_training_args`` puts
``trainer_flags(p)`` into every trainer's arguments (accelerate then autocasts fp32 weights), or, for a bf16 run with
``train.master_weights`` (``with_master_weights``), hold the weights in bf16 with fp32 master
copies in the optimizer and no autocast (``cotdistill.mixed_precision``); generators use ``autocast(p, device)``
(students, and the ``hf`` teacher on a CPU) or load frozen weights in ``p.dtype`` (the ``hf``
teacher on a GPU).
``announce`` logs the resolved choice once per process and purpose.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cotdistill.errors import ConfigError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")
Purpose = Literal["train", "generate"]
AUTO_BF16_MIN_HIDDEN = {"train": 128, "generate": 256}
"""Narrowest model (hidden size) for which ``auto`` picks bf16 on a bf16 CPU, per purpose (measured)."""


class Precision(StrEnum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


PRECISION_HELP = (
    "auto (bf16 on CUDA with bf16 and on CPUs with AMX/AVX512-BF16 for models at least "
    f"{AUTO_BF16_MIN_HIDDEN['train']} wide to train, {AUTO_BF16_MIN_HIDDEN['generate']} to generate; "
    "else fp32) | fp32 | bf16 | fp16 (CUDA only)"
)


def master_weights_field() -> Any:
    """The ``master_weights`` dataclass field of a training config (off by default)."""
    return field(
        default=False,
        metadata={"help": "bf16 runs: bf16 weights with fp32 master copies in the optimizer, no autocast"},
    )


@dataclass(frozen=True)
class ResolvedPrecision:
    """What a run uses: ``precision`` (never AUTO) and why (``reason``, for the log line);
    ``master_weights``: bf16 weights with fp32 master copies instead of autocast (bf16 training only)."""

    precision: Precision
    reason: str
    master_weights: bool = False

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}.get(self.precision, torch.float32)

    @property
    def mixed(self) -> bool:
        return self.precision is not Precision.FP32


@cache
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's bf16 matrix-instruction flags among ``CPU_BF16_FLAGS`` (empty when it has none)."""
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return tuple(flag for flag in CPU_BF16_FLAGS if found.get(flag))
    words = set(CPUINFO.read_text(errors="replace").split()) if CPUINFO.exists() else set()
    return tuple(flag for flag in CPU_BF16_FLAGS if flag in words)


def model_width(model: Any) -> int | None:
    """``hidden_size`` of a transformers model or config (PEFT wrappers included), else None."""
    config = getattr(model, "config", model)
    config = getattr(config, "get_text_config", lambda: config)()
    width = getattr(config, "hidden_size", None)
    return int(width) if isinstance(width, int) else None


def resolve_precision(
    setting: Precision | str,
    model: Any = None,
    device: torch.device | str = "cpu",
    *,
    purpose: Purpose = "train",
    key: str = "precision",
) -> ResolvedPrecision:
    """The precision to ``purpose`` (train | generate) ``model`` (a model or config) on ``device``.

    See the module docstring for the rule.

    Raises ``ConfigError`` naming ``key`` for a choice the device cannot run.
    """
    import torch

    setting = Precision(setting)
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    cuda_bf16 = on_cuda and torch.cuda.is_bf16_supported()
    if setting is Precision.FP16 and not on_cuda:
        raise ConfigError(f"{key}: fp16 needs a CUDA GPU, this run is on {device.type} (write bf16 or fp32)")
    if setting is Precision.BF16 and on_cuda and not cuda_bf16:
        raise ConfigError(f"{key}: this GPU has no bf16 (write fp16 or fp32)")
    if setting is not Precision.AUTO:
        return ResolvedPrecision(setting, "set explicitly")
    if on_cuda:
        if cuda_bf16:
            return ResolvedPrecision(Precision.BF16, "auto: CUDA GPU with bf16")
        return ResolvedPrecision(Precision.FP32, "auto: CUDA GPU without bf16")
    if device.type != "cpu":
        return ResolvedPrecision(Precision.FP32, f"auto: {device.type} device")
    flags = cpu_bf16_flags()
    if not flags:
        return ResolvedPrecision(Precision.FP32, "auto: the CPU has no AMX-BF16/AVX512-BF16")
    width, needed = model_width(model), AUTO_BF16_MIN_HIDDEN[purpose]
    if width is None or width < needed:
        return ResolvedPrecision(
            Precision.FP32, f"auto: CPU has {'+'.join(flags)} but hidden size {width} < {needed} to {purpose}"
        )
    return ResolvedPrecision(Precision.BF16, f"auto: CPU has {'+'.join(flags)}, hidden size {width}")


def training_device() -> torch.device:
    """Where a Trainer puts the model: the accelerator when there is one, else the CPU."""
    import torch

    accelerator = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
    return accelerator or torch.device("cpu")


def with_master_weights(
    resolved: ResolvedPrecision, enabled: bool, *, key: str = "train.master_weights"
) -> ResolvedPrecision:
    """``resolved`` with ``master_weights`` set when ``enabled`` and the run is bf16 (an fp32 run has
    nothing to cast and stays as it is). Raises ``ConfigError`` naming ``key`` for fp16, which needs loss scaling."""
    if not enabled or resolved.precision is Precision.FP32:
        return resolved
    if resolved.precision is Precision.FP16:
        raise ConfigError(f"{key}: needs bf16 (fp16 weights need loss scaling); write precision: bf16")
    return replace(resolved, master_weights=True)


def trainer_flags(resolved: ResolvedPrecision) -> dict[str, bool]:
    """``bf16`` / ``fp16`` keyword arguments of ``transformers.TrainingArguments`` (and TRL configs);
    both false with ``master_weights`` (the weights are bf16 already, nothing to autocast)."""
    bf16 = resolved.precision is Precision.BF16 and not resolved.master_weights
    return {"bf16": bf16, "fp16": resolved.precision is Precision.FP16}


def autocast(resolved: ResolvedPrecision, device: torch.device | str) -> AbstractContextManager:
    """Mixed-precision autocast on ``device`` (a no-op for fp32)."""
    import torch

    if not resolved.mixed:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=resolved.dtype)


_announced: set[tuple[str, Precision, bool]] = set()


def announce(resolved: ResolvedPrecision, purpose: str) -> None:
    """Log ``purpose: precision <p> (<reason>)`` once per process for each purpose and choice."""
    if (purpose, resolved.precision, resolved.master_weights) in _announced:
        return
    _announced.add((purpose, resolved.precision, resolved.master_weights))
    how = ", bf16 weights with fp32 master copies" if resolved.master_weights else ""
    log.info("%s: precision %s%s (%s)", purpose, resolved.precision.value, how, resolved.reason)


_LEGACY: dict[str, dict[Any, Precision]] = {
    "bf16": {True: Precision.BF16, False: Precision.FP32},
    "dtype": {"auto": Precision.AUTO, "float32": Precision.FP32, "bfloat16": Precision.BF16, "float16": Precision.FP16},
}


def legacy_precision(name: str, value: Any, precision: Precision | str) -> Precision:
    """``precision`` after honouring a deprecated setting (``bf16: true|false``, ``dtype: float32|...``).

    Logs a warning saying what to write instead; ``ValueError`` when the two disagree.
    """
    precision = Precision(precision)
    if value is None:
        return precision
    wanted = _LEGACY[name][value]
    if precision not in (Precision.AUTO, wanted):
        raise ValueError(f"{name} is deprecated and disagrees with precision: {precision.value}; remove {name}")
    log.warning("%s: %s is deprecated; write precision: %s", name, str(value).lower(), wanted.value)
    return wanted
