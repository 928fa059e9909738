"""Depth pruning: a student made of a subset of a pretrained model's decoder layers.

``keep_decoder_layers(model, keep)`` keeps the listed layers (in the given, increasing order),
renumbers each attention module's ``layer_idx`` (the KV cache is indexed by it) and updates
``config.num_hidden_layers`` (and per-layer lists such as ``config.layer_types``), so the
result saves as an ordinary safetensors checkpoint of a shallower model and loads back with
``from_pretrained``. This is the initialisation DistilBERT and Minitron use before distilling.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

PER_LAYER_CONFIG = ("layer_types",)


def validate_keep_layers(keep: Sequence[int], num_layers: int) -> None:
    """Raise ``ValueError`` unless ``keep`` is a non-empty increasing list of indices in [0, num_layers)."""
    if not keep:
        raise ValueError("keep_layers must list at least one layer")
    bad = [i for i in keep if not 0 <= i < num_layers]
    if bad:
        raise ValueError(f"keep_layers {bad} out of range: the model has {num_layers} layers (0..{num_layers - 1})")
    if any(b <= a for a, b in zip(keep, keep[1:], strict=False)):
        raise ValueError(f"keep_layers must be strictly increasing, got {list(keep)}")


def keep_decoder_layers(model: nn.Module, keep: Sequence[int]) -> nn.Module:
    """Keep only decoder layers ``keep`` of a causal LM in place; returns ``model``."""
    decoder = model.get_decoder()
    layers = decoder.layers
    validate_keep_layers(keep, len(layers))
    decoder.layers = nn.ModuleList([layers[i] for i in keep])
    for new_index, layer in enumerate(decoder.layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = model.config
    for name in PER_LAYER_CONFIG:
        values = getattr(config, name, None)
        if isinstance(values, list) and len(values) == len(layers):
            setattr(config, name, [values[i] for i in keep])
    config.num_hidden_layers = len(keep)
    return model
