"""bf16 working weights with fp32 master copies (Apex O2 / Megatron style) for ``transformers.Trainer``.

With ``train.master_weights: true`` and a bf16 precision, the student's model holds its
parameters in bf16 and runs without autocast, so a step casts no weight and no activation
(autocast's casts were about a quarter of a bf16 step on a CPU, ``benchmarks/results/sft_profile.md``):

* ``BF16Weights(module)`` swaps each fp32 parameter's data for a bf16 copy and keeps the fp32
  tensor aside: the master of a trainable parameter, the untouched original of a frozen one
  (a LoRA base). Buffers (e.g. RoPE's ``inv_freq``) stay fp32. ``fp32()`` puts the fp32 tensors
  back for a while (saving a checkpoint), ``restore()`` for good (the end of training).
* ``MasterWeightsOptimizer(inner, weights)``: the inner optimizer (the Trainer's AdamW, torch's
  fused kernel where it has one) steps the fp32 masters in place of the bf16 parameters. ``step``
  copies each bf16 gradient into a persistent fp32 buffer, steps the inner optimizer in fp32 and
  rounds the masters into the bf16 weights. Parameters outside ``weights`` (fp32 modules such as
  the PRADA discriminator or a soft prompt) are stepped as they are. ``param_groups`` are the
  inner optimizer's (the lr scheduler sets them); ``state_dict`` adds the masters.
* ``MasterWeightsMixin``: put it before ``Trainer`` in a trainer's bases and call
  ``hold_in_bf16(module)`` (``make_trainer(cls, precision, **kwargs)`` does both for a trainer
  class that does not mix it in, such as TRL's SFT, ORPO, DPO and GRPO trainers). The cast happens when the optimizer is created (after a resume has
  loaded the checkpoint's fp32 weights); checkpoints are saved with the fp32 values; when
  ``train()`` returns (or raises) the module is fp32 again, holding the masters.

Stays fp32: masters, optimizer states and the update; modules outside ``module``; the loss
(callers upcast the logits) and HF's norms (they upcast inside). Gradients are bf16, as the
backward computes them under autocast too; with gradient accumulation they also sum in bf16
across micro-batches, and the Trainer clips them in bf16. Not supported: fp16 (it needs loss
scaling) and DeepSpeed / FSDP, which own the optimizer (DeepSpeed's ``bf16`` mode does this itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from typing import Any, TypeVar

import torch
from torch import nn

from cotdistill.errors import ConfigError
from cotdistill.precision import ResolvedPrecision

TrainerT = TypeVar("TrainerT")
MASTERS_KEY = "fp32_master_weights"
"""``MasterWeightsOptimizer.state_dict`` key of the masters (a list, in ``MasterWeightsOptimizer.pairs`` order)."""


class BF16Weights:
    """The fp32 parameters of ``module`` held in bf16, each one's fp32 tensor kept aside."""

    def __init__(self, module: nn.Module):
        self.params = [p for p in module.parameters() if p.dtype == torch.float32]  # tied weights once
        self._fp32 = [p.data for p in self.params]
        self._bf16 = [d.to(torch.bfloat16) for d in self._fp32]
        self._masters = {
            id(p): nn.Parameter(d) for p, d in zip(self.params, self._fp32, strict=True) if p.requires_grad
        }
        self._swap(self._bf16)

    def master(self, param: nn.Parameter) -> nn.Parameter | None:
        """The fp32 master of trainable ``param`` (shares the fp32 tensor's storage); None for others."""
        return self._masters.get(id(param))

    def _swap(self, tensors: list[torch.Tensor]) -> None:
        for p, t in zip(self.params, tensors, strict=True):
            p.data = t

    @contextmanager
    def fp32(self) -> Iterator[None]:
        """The module holds its fp32 values (masters, frozen originals) inside the block, bf16 after."""
        self._swap(self._fp32)
        try:
            yield
        finally:
            self._swap(self._bf16)

    def restore(self) -> None:
        """Leave the module in fp32 for good, holding the masters' values."""
        self._swap(self._fp32)
        self._bf16 = self._fp32


class MasterWeightsOptimizer(torch.optim.Optimizer):
    """``inner`` (a fresh optimizer built over the module's parameters) stepping fp32 masters.

    ``pairs``: (bf16 parameter, fp32 master) for every trainable parameter of ``weights`` that
    ``inner`` optimises. No ``Optimizer.__init__``: groups and state are the inner optimizer's.
    """

    def __init__(self, inner: torch.optim.Optimizer, weights: BF16Weights):
        if inner.state:
            raise ValueError("MasterWeightsOptimizer wraps an optimizer that has not stepped yet")
        self.inner = inner
        self.pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        for group in inner.param_groups:
            params = []
            for p in group["params"]:
                master = weights.master(p)
                params.append(p if master is None else master)
                if master is not None:
                    self.pairs.append((p, master))
            group["params"] = params
        self._grads = [torch.empty_like(m) for _, m in self.pairs]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    @param_groups.setter
    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        self.inner.param_groups = groups

    @property
    def state(self) -> dict:
        return self.inner.state

    @state.setter
    def state(self, state: dict) -> None:
        self.inner.state = state

    @property
    def defaults(self) -> dict[str, Any]:
        return self.inner.defaults

    @defaults.setter
    def defaults(self, defaults: dict[str, Any]) -> None:
        self.inner.defaults = defaults

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """bf16 grads -> fp32 master grads, inner step in fp32, masters rounded into the bf16 weights.

        A parameter without a gradient is skipped, as a plain optimizer skips it.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stepped = []
        for (p, m), buffer in zip(self.pairs, self._grads, strict=True):
            if p.grad is not None:
                m.grad = buffer.copy_(p.grad)
                stepped.append((p, m))
        self.inner.step()
        for p, m in stepped:
            p.copy_(m)
            m.grad = None
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the bf16 parameters' gradients and those of the parameters stepped as they are."""
        self.inner.zero_grad(set_to_none=set_to_none)
        for p, _ in self.pairs:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state dict plus ``MASTERS_KEY``: the fp32 masters."""
        return {**self.inner.state_dict(), MASTERS_KEY: [m.detach() for _, m in self.pairs]}

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the inner state; masters saved with it are copied in and rounded into the bf16 weights
        (a state dict without them, from a run without master weights, keeps the current masters)."""
        state_dict = dict(state_dict)
        masters = state_dict.pop(MASTERS_KEY, None)
        self.inner.load_state_dict(state_dict)
        if masters is None:
            return
        if len(masters) != len(self.pairs):
            raise ValueError(f"the state dict has {len(masters)} master weights, this optimizer {len(self.pairs)}")
        for (p, m), saved in zip(self.pairs, masters, strict=True):
            m.copy_(saved)
            p.copy_(m)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


class MasterWeightsMixin:
    """Mix in before ``transformers.Trainer``; ``hold_in_bf16(module)`` turns master weights on."""

    _bf16_module: nn.Module | None = None
    _weights: BF16Weights | None = None

    def hold_in_bf16(self, module: nn.Module) -> None:
        """Train ``module`` with bf16 weights and fp32 masters (``TrainingArguments`` without bf16 autocast)."""
        from accelerate.utils import DistributedType

        if self.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
            raise ConfigError(
                "train.master_weights: not with DeepSpeed or FSDP, which own the optimizer (use their bf16 mode)"
            )
        if self.args.bf16 or self.args.fp16:
            raise ConfigError("train.master_weights: the TrainingArguments must not autocast (bf16/fp16 false)")
        self._bf16_module = module

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer; with master weights on, the module goes bf16 and the optimizer is wrapped."""
        optimizer = super().create_optimizer(model)
        if self._bf16_module is None or self._weights is not None:
            return optimizer
        self._weights = BF16Weights(self._bf16_module)
        self.optimizer = MasterWeightsOptimizer(optimizer, self._weights)
        return self.optimizer

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save with the fp32 values (masters and frozen originals), then carry on in bf16."""
        with self._weights.fp32() if self._weights is not None else nullcontext():
            super().save_model(output_dir, _internal_call)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``; afterwards the module is fp32 with the masters' values, and a later
        ``train()`` call builds a fresh optimizer."""
        try:
            return super().train(*args, **kwargs)
        finally:
            if self._weights is not None:
                self._weights.restore()
                self._weights = None
                self.optimizer = None


@cache
def master_weights_class(trainer_cls: type[TrainerT]) -> type[TrainerT]:
    """``trainer_cls`` with ``MasterWeightsMixin`` first in its bases (itself when it has it already)."""
    if issubclass(trainer_cls, MasterWeightsMixin):
        return trainer_cls
    return type(trainer_cls.__name__, (MasterWeightsMixin, trainer_cls), {"__module__": __name__})


def make_trainer(trainer_cls: type[TrainerT], precision: ResolvedPrecision, /, **kwargs: Any) -> TrainerT:
    """``trainer_cls(**kwargs)``; with ``precision.master_weights`` its master-weights subclass, holding
    the whole trainer model (a PEFT model's frozen base too) in bf16 once its optimizer is built."""
    if not precision.master_weights:
        return trainer_cls(**kwargs)
    trainer = master_weights_class(trainer_cls)(**kwargs)
    trainer.hold_in_bf16(trainer.model)
    return trainer
