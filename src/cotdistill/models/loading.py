"""``StudentConfig`` and ``load_student``: build a Student from a preset, a directory, a name or a GGUF file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cotdistill.errors import ConfigError
from cotdistill.models.lora import StudentLoRAConfig, apply_lora
from cotdistill.models.prune import keep_decoder_layers, validate_keep_layers
from cotdistill.models.short_attention import use_short_attention
from cotdistill.models.student import STUDENT_FILE, Student, plain_prompt
from cotdistill.models.tiny import TinyConfig, build_tiny_model, train_tokenizer

TINY = "tiny"


@dataclass
class StudentConfig:
    """Which student to train and how (full fine-tuning or LoRA)."""

    model: str = field(
        default=TINY,
        metadata={
            "help": "'tiny' (from scratch, tokenizer trained on the run's data), a pulled preset "
            "(smollm2-135m-instruct, gemma3-270m), a .gguf file, a saved student or HF model directory, or a HF name"
        },
    )
    finetune: Literal["full", "lora"] = field(default="full", metadata={"help": "train all weights or LoRA adapters"})
    lora: StudentLoRAConfig = field(
        default_factory=StudentLoRAConfig, metadata={"help": "LoRA settings (finetune: lora)"}
    )
    tiny: TinyConfig = field(default_factory=TinyConfig, metadata={"help": "sizes of the tiny preset"})
    use_chat_template: bool = field(
        default=True, metadata={"help": "prompt with the chat template when the model has one"}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow model code from the checkpoint (off: safer)"}
    )
    keep_layers: list[int] | None = field(
        default=None,
        metadata={"help": "depth pruning: keep only these decoder layers of the model (increasing, 0-based)"},
    )

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ValueError("model must name a preset, directory, file or model name, got ''")
        if self.keep_layers is not None:
            validate_keep_layers(self.keep_layers, max(self.keep_layers, default=0) + 1)


def load_student(cfg: StudentConfig, corpus: Iterable[str] | None = None, *, key: str = "student") -> Student:
    """A fresh Student per ``cfg``; ``corpus`` (texts of the run) trains the tiny preset's tokenizer.

    ``key`` names the config section in errors (``student``, or ``teacher`` for a KD teacher)."""
    from cotdistill.models.pull import PRESETS, resolve_model

    name = cfg.model
    if name == TINY:
        if corpus is None:
            raise ConfigError(f"{key}.model 'tiny' needs a corpus (the run's texts) to train its tokenizer")
        texts = [plain_prompt("", ""), *corpus]
        tokenizer = train_tokenizer(texts, cfg.tiny.vocab_size)
        student = Student(build_tiny_model(cfg.tiny, tokenizer), tokenizer, None, cfg.use_chat_template)
    elif name in PRESETS:
        student = _from_pretrained(resolve_model(name), cfg, key)
    elif name.endswith(".gguf"):
        from cotdistill.models.gguf import load_gguf

        model, tokenizer = load_gguf(name)
        student = Student(model, tokenizer, None, cfg.use_chat_template)
    elif (Path(name) / STUDENT_FILE).exists():
        student = Student.load(name, trust_remote_code=cfg.trust_remote_code)
    else:
        student = _from_pretrained(name, cfg, key)
    use_short_attention(student.model)
    if cfg.keep_layers is not None:
        try:
            keep_decoder_layers(student.model, cfg.keep_layers)
        except ValueError as exc:
            raise ConfigError(f"{key}.keep_layers: {exc}") from None
    if cfg.finetune == "lora" and not student.is_peft:
        student.model = apply_lora(student.model, cfg.lora)
    return student


def _from_pretrained(name: str, cfg: StudentConfig, key: str) -> Student:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(name, trust_remote_code=cfg.trust_remote_code)
    except OSError as exc:
        raise ConfigError(
            f"{key}.model '{name}': not a preset, .gguf file, directory or reachable model name ({exc})"
        ) from None
    return Student(model, tokenizer, None, cfg.use_chat_template)
