"""The ``Student``: a causal LM, its tokenizer, an optional soft prompt, and the one prompt format.

Training and evaluation both go through this class so they agree exactly:

* ``prompt(question, instruction)`` is the only place the prompt text is built (the chat template
  when the model has one and ``use_chat_template`` is set, else ``"Question: ...\\nAnswer:"``);
  ``example_prompt(example)`` adds the task's answer instruction, and is what SFT trains on and
  what evaluation should generate from.
* ``encode_prompt`` / ``encode_completion`` turn them into token ids (prompt and completion are
  tokenised separately and concatenated, so a training prompt is token-for-token the generation
  prompt).
* ``embed_inputs`` maps ids to input embeddings and prepends the soft prompt (if any); the SFT
  trainer's forward and ``generate`` both call it.

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

from cotdistill.console import progress as progress_bar
from cotdistill.errors import CotDistillError, DataError
from cotdistill.io import read_text
from cotdistill.precision import Precision, announce, autocast, resolve_precision

STUDENT_FILE = "student.json"
SOFT_PROMPT_DIR = "soft_prompt"
BASE_DIR = "base"


def plain_prompt(question: str, instruction: str | None = None) -> str:
    """The prompt format of models without a chat template."""
    text = f"{question}\n{instruction}" if instruction else question
    return f"Question: {text}\nAnswer:"


def task_instruction(domain: str) -> str | None:
    """The answer instruction of the registered task named ``domain`` (None for unknown domains)."""
    from cotdistill.tasks import TASKS

    return TASKS.get(domain)().answer_instruction if domain in TASKS else None


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

    def example_prompt(self, example: Any, instruction: str | None = None) -> str:
        """``prompt`` for an ``Example`` with its task's answer instruction (or ``instruction``)."""
        return self.prompt(example.question, instruction or task_instruction(example.domain))

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

    def eos_token_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return sorted(i for i in ids if i is not None)

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
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
        """``num_samples`` completions per prompt (greedy at temperature 0, else sampled).

        Prompts are batched longest-first with left padding and the KV cache; each completion is
        cut at EOS and at the first stop string. ``precision`` (``cotdistill.precision``) is
        resolved for the model and device; bf16/fp16 autocast the forward passes, the weights stay
        as they are. Returns one list per prompt, in prompt order.
        """
        from transformers import GenerationConfig

        if temperature < 0 or num_samples < 1 or batch_size < 1:
            raise ValueError(f"bad generation settings: {temperature=}, {num_samples=}, {batch_size=}")
        sampling = temperature > 0
        encoded = [self.encode_prompt(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_k=0 if sampling else None,
            top_p=1.0 if sampling else None,
            num_return_sequences=num_samples if sampling else 1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_ids(),
            use_cache=True,
        )
        results: list[list[str]] = [[] for _ in prompts]
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        resolved = resolve_precision(precision, self.model, self.device, purpose="generate", key="precision")
        announce(resolved, "generation")
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast(resolved, self.device):
                for batch in progress_bar(batches, desc="generate", disable=not progress):
                    texts = self._generate_batch([encoded[i] for i in batch], config, stop)
                    per = config.num_return_sequences
                    for j, index in enumerate(batch):
                        chunk = texts[j * per : (j + 1) * per]
                        results[index] = chunk if sampling else chunk * num_samples
        finally:
            self.model.train(was_training)
        return results

    def _generate_batch(self, batch: list[list[int]], config: Any, stop: Sequence[str] | None) -> list[str]:
        rows = self.generate_token_ids(batch, config)
        return [_trim(self.tokenizer.decode(row, skip_special_tokens=True), stop) for row in rows]

    def generate_token_ids(self, batch: list[list[int]], config: Any, *, keep_eos: bool = False) -> list[list[int]]:
        """New token ids for each prompt of ``batch`` (left-padded together; soft prompt prepended),
        cut at the first of ``config.eos_token_id`` (kept when ``keep_eos``); ``num_return_sequences``
        rows per prompt."""
        width = max(len(ids) for ids in batch)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=self.device)
        if self.soft_prompt is None:
            output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
            new_tokens = output[:, width:]
        else:
            embeds, mask = self.embed_inputs(input_ids, attention_mask)
            new_tokens = self.model.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=config)
        eos = set(config.eos_token_id)
        rows = []
        for row in new_tokens.tolist():
            cut = next((k for k, token in enumerate(row) if token in eos), None)
            rows.append(row if cut is None else row[: cut + 1 if keep_eos else cut])
        return rows

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


def _trim(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` at the earliest stop string and strip surrounding whitespace."""
    cuts = [text.find(s) for s in stop or () if s and s in text]
    if cuts:
        text = text[: min(cuts)]
    return text.strip()
