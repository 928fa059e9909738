"""The ``Student``: a causal LM, its tokenizer, an optional soft prompt, and the one prompt format.

Training and evaluation both go through this class so they agree exactly:

* ``prompt(question, instruction)`` is the only place the prompt text is built (the chat template
  when the model has one and ``use_chat_template`` is set, else ``"Question: ...\\nAnswer:"``);
  the caller passes the domain's answer instruction (training and evaluation pass the same one).
* ``encode_prompt`` / ``encode_completion`` turn them into token ids (prompt and completion are
  tokenised separately and concatenated, so a training prompt is token-for-token the generation
  prompt).
* ``embed_inputs`` maps ids to input embeddings and prepends the soft prompt (if any); the SFT
  trainer's forward and ``generate`` both call it.
* ``generate`` runs on ``models.generation.GenerationEngine`` (its stop and padding rules).

A soft prompt is any ``nn.Module`` called as ``soft_prompt(batch_size)`` (or with
``domain_ids=``) returning ``(B, P, H)`` embeddings; to be saved with the student it needs
``save(directory)``, a classmethod ``load(directory)`` and a name in ``nn.soft_prompt.SOFT_PROMPTS``
(``register_soft_prompt``). ``student.json`` stores that name, and ``load`` takes classes from
the registry only: a checkpoint never names code to import.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cotdistill.errors import CotDistillError, DataError
from cotdistill.io import read_text
from cotdistill.models.generation import GenerationEngine, Sampling, stop_token_ids
from cotdistill.models.short_attention import use_short_attention
from cotdistill.precision import Precision, announce, resolve_precision

STUDENT_FILE = "student.json"
SOFT_PROMPT_DIR = "soft_prompt"
BASE_DIR = "base"


def plain_prompt(question: str, instruction: str | None = None) -> str:
    """The prompt format of models without a chat template."""
    text = f"{question}\n{instruction}" if instruction else question
    return f"Question: {text}\nAnswer:"


class Student:
    """A student LM ready to train and generate (see the module docstring for the contracts)."""

    def __init__(
        self, model: nn.Module, tokenizer: Any, soft_prompt: nn.Module | None = None, use_chat_template: bool = True
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.soft_prompt = soft_prompt
        self.use_chat_template = use_chat_template
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    # ------------------------------------------------------------------ prompt format

    @property
    def uses_chat_template(self) -> bool:
        return bool(self.use_chat_template and getattr(self.tokenizer, "chat_template", None))

    def prompt(self, question: str, instruction: str | None = None) -> str:
        """The generation prompt for ``question`` (the completion follows it directly)."""
        if not self.uses_chat_template:
            return plain_prompt(question, instruction)
        content = f"{question}\n{instruction}" if instruction else question
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )

    def completion(self, text: str) -> str:
        """The text the model is trained to produce after ``prompt()`` for target ``text``."""
        return text if self.uses_chat_template else f" {text}"

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt (BOS added unless the chat template already wrote its specials)."""
        return self.tokenizer(prompt, add_special_tokens=not self.uses_chat_template)["input_ids"]

    def encode_completion(self, text: str) -> list[int]:
        """Token ids of the completion for target ``text``, ending with EOS."""
        ids = self.tokenizer(self.completion(text), add_special_tokens=False)["input_ids"]
        return [*ids, self.tokenizer.eos_token_id]

    # ------------------------------------------------------------------ model plumbing

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_virtual_tokens(self) -> int:
        """How many soft-prompt embeddings ``embed_inputs`` prepends (0 without a soft prompt)."""
        if self.soft_prompt is None:
            return 0
        with torch.no_grad():
            return int(self.soft_prompt(1).shape[1])

    def embed_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, domain_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)`` ids and mask -> ``(B, P + T, H)`` embeddings and ``(B, P + T)`` mask.

        ``P`` is the soft prompt's length (0 without one); its positions are always attended.
        """
        embeds = self.model.get_input_embeddings()(input_ids)
        if self.soft_prompt is None:
            return embeds, attention_mask
        batch = input_ids.shape[0]
        prefix = self.soft_prompt(batch) if domain_ids is None else self.soft_prompt(batch, domain_ids=domain_ids)
        prefix = prefix.to(dtype=embeds.dtype, device=embeds.device)
        mask = torch.cat([attention_mask.new_ones(batch, prefix.shape[1]), attention_mask], dim=1)
        return torch.cat([prefix, embeds], dim=1), mask

    @property
    def engine(self) -> GenerationEngine:
        """The generation engine over the current model, tokenizer and soft prompt."""
        embed = None if self.soft_prompt is None else self.embed_inputs
        return GenerationEngine(self.model, self.tokenizer, embed=embed)

    def eos_token_ids(self) -> list[int]:
        """Ids that end a completion (``models.generation.stop_token_ids``)."""
        return stop_token_ids(self.model, self.tokenizer)

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        num_samples: int = 1,
        batch_size: int = 16,
        stop: Sequence[str] | None = None,
        progress: bool = True,
        precision: Precision | str = Precision.AUTO,
    ) -> list[list[str]]:
        """``num_samples`` completions per prompt (greedy at temperature 0, else sampled), in prompt order.

        Runs on ``GenerationEngine`` (longest-first batches, left padding, KV cache; cut at the stop
        tokens and the first stop string), then strips surrounding whitespace. ``precision``
        (``cotdistill.precision``) is resolved for the model and device; bf16/fp16 autocast the
        forward passes, the weights stay as they are.
        """
        stops = tuple(s for s in stop or () if s)
        sampling = Sampling(max_new_tokens=max_new_tokens, temperature=temperature, n=num_samples, stop=stops)
        resolved = resolve_precision(precision, self.model, self.device, purpose="generate", key="precision")
        announce(resolved, "generation")
        encoded = [self.encode_prompt(p) for p in prompts]
        results = self.engine.generate(encoded, sampling, batch_size=batch_size, precision=resolved, progress=progress)
        return [[c.text.strip() for c in completions] for completions in results]

    def generate_token_ids(self, batch: list[list[int]], config: Any, *, keep_eos: bool = False) -> list[list[int]]:
        """New token ids for each prompt of ``batch`` under a ``GenerationConfig`` (``GenerationEngine.token_ids``)."""
        return self.engine.token_ids(batch, config, keep_eos=keep_eos)

    # ------------------------------------------------------------------ persistence

    @property
    def is_peft(self) -> bool:
        return hasattr(self.model, "peft_config")

    def save(self, directory: str | Path) -> None:
        """Write weights (safetensors; the adapter for a PEFT model), tokenizer, soft prompt, student.json."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {"format": 1, "use_chat_template": self.use_chat_template, "peft": self.is_peft}
        if self.is_peft:
            base = self.model.get_base_model()
            base_path = Path(str(base.name_or_path or ""))
            if base_path.is_dir() and (base_path / "config.json").exists():
                settings["base_model"] = str(base_path.resolve())
            else:
                base.save_pretrained(directory / BASE_DIR, state_dict=_without_adapters(base.state_dict()))
                settings["base_model"] = BASE_DIR
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        if self.soft_prompt is not None:
            settings["soft_prompt"] = _soft_prompt_name(type(self.soft_prompt))
            self.soft_prompt.save(directory / SOFT_PROMPT_DIR)
        (directory / STUDENT_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, *, trust_remote_code: bool = False) -> Student:
        """Load a student written by ``save``."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        directory = Path(directory)
        settings_path = directory / STUDENT_FILE
        if not settings_path.exists():
            raise CotDistillError(f"{directory}: not a student checkpoint (no {STUDENT_FILE})")
        settings = _read_settings(settings_path)
        soft_cls = _soft_prompt_class(settings.get("soft_prompt"), settings_path)
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)
        if settings.get("peft"):
            from peft import PeftModel

            base_path = directory / settings["base_model"]
            base = AutoModelForCausalLM.from_pretrained(base_path, trust_remote_code=trust_remote_code)
            model = PeftModel.from_pretrained(base, directory, is_trainable=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(directory, trust_remote_code=trust_remote_code)
        use_short_attention(model)
        soft_prompt = soft_cls.load(directory / SOFT_PROMPT_DIR) if soft_cls is not None else None
        return cls(model, tokenizer, soft_prompt, settings.get("use_chat_template", True))


def _read_settings(path: Path) -> dict[str, Any]:
    """``student.json`` as a mapping; malformed content raises DataError naming the file."""
    try:
        settings = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", path=str(path)) from None
    if not isinstance(settings, dict):
        raise DataError("expected a JSON object", path=str(path))
    for key in ("peft", "use_chat_template"):
        if not isinstance(settings.get(key, False), bool):
            raise DataError(f"key '{key}' must be true or false", path=str(path))
    if settings.get("peft") and not isinstance(settings.get("base_model"), str):
        raise DataError("key 'base_model' must name the base model directory", path=str(path))
    return settings


def _soft_prompt_name(soft_cls: type) -> str:
    """The registered name of a soft-prompt class (saving an unregistered one is refused)."""
    from cotdistill.nn.soft_prompt import SOFT_PROMPTS

    for name in SOFT_PROMPTS:
        if SOFT_PROMPTS.get(name) is soft_cls:
            return name
    raise CotDistillError(
        f"soft prompt class {soft_cls.__qualname__} is not registered; "
        "decorate it with cotdistill.nn.soft_prompt.register_soft_prompt(name) so a checkpoint can name it"
    )


def _soft_prompt_class(value: Any, path: Path) -> type | None:
    """The registered class ``student.json`` names under ``soft_prompt`` (None when it has none).

    Only names in ``SOFT_PROMPTS`` are accepted (and, for checkpoints written before names, the
    ``module:Class`` text of a registered class, compared as text); nothing is imported.
    """
    from cotdistill.nn.soft_prompt import SOFT_PROMPTS

    if value is None:
        return None
    if isinstance(value, str):
        if value in SOFT_PROMPTS:
            return SOFT_PROMPTS.get(value)
        for name in SOFT_PROMPTS:
            registered = SOFT_PROMPTS.get(name)
            if value == f"{registered.__module__}:{registered.__qualname__}":
                return registered
    raise DataError(
        f"key 'soft_prompt': {value!r} is not a registered soft prompt (known: {', '.join(SOFT_PROMPTS.names())}); "
        "a checkpoint may only name registered classes",
        path=str(path),
    )


def _without_adapters(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base model's own weights from the state dict of a model with LoRA layers injected."""
    return {k.replace(".base_layer.", "."): v for k, v in state.items() if "lora_" not in k}
