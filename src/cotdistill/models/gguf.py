"""Load a ``.gguf`` checkpoint into a regular (saveable) transformers model.

transformers dequantises GGUF tensors to fp32 (``from_pretrained(dir, gguf_file=...)``) but the
resulting model refuses ``save_pretrained``; we rebuild a fresh model from its config and copy
the state dict in, so it can be saved and fine-tuned like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cotdistill.errors import CotDistillError


def load_gguf(path: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a GGUF file; the model is fp32 and saveable."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_file():
        raise CotDistillError(f"{path}: GGUF file does not exist")
    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not _is_tied(model, k)]
    if missing or unexpected:
        raise CotDistillError(
            f"{path}: GGUF tensors do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    if model.config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = loaded.generation_config
    return model, tokenizer


def save_gguf_as_hf(path: str | Path, out_dir: str | Path) -> Path:
    """Convert a GGUF file to a safetensors HF model directory (model + tokenizer)."""
    model, tokenizer = load_gguf(path)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _is_tied(model: Any, key: str) -> bool:
    return key == "lm_head.weight" and bool(getattr(model.config, "tie_word_embeddings", False))
