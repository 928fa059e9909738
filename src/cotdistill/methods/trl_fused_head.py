"""Make TRL's fused LM head score only the labelled positions on a CPU too.

TRL's SFT, DPO, GRPO, KTO and RLOO trainers replace the model's forward with a chunked LM head
(``trl.trainer.utils.add_fused_lm_head``). On Triton devices (CUDA, XPU) it scores only the
positions that carry a label. Everywhere else it scores every position, prompt and padding too, so
that compiling backends see one tile shape per batch. A CPU compiles nothing, and where the prompt
is most of each row (ReDis: the seen examples) the head then costs most of the step: 62% of a DPO
step, profiled on SmolLM2 with LoRA.

``compact_fused_head()`` routes CPU tensors down TRL's compact path for the duration of a ``with``
block. The result is the same up to summation order: the compact path scatters the labelled
positions' values back into zeros, where the full path zeroes the unlabelled ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)

COMPACT_DEVICE_TYPES = ("cpu",)


@contextmanager
def compact_fused_head() -> Iterator[None]:
    """Within the block, TRL's fused LM head scores only labelled positions on CPU tensors as well.

    A no-op when the installed TRL has no fused head (the symbol is looked up, not assumed).
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        yield
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        log.debug("this TRL has no fused LM head switch (trl.trainer.utils._use_triton); nothing to change")
        yield
        return

    def compact_here(device: torch.device) -> bool:
        return device.type in COMPACT_DEVICE_TYPES or original(device)

    trl_utils._use_triton = compact_here
    try:
        yield
    finally:
        trl_utils._use_triton = original
