"""The one batched generation engine for local causal LMs: students, the ``hf`` teacher, the reasoner.

Contract (``GenerationEngine(model, tokenizer, embed=None)``):

* prompts are token ids; a batch is left-padded with the tokenizer's pad id and generated with
  the KV cache by ``models.decode.decode``, which drops each row from the batch as soon as it
  ends (one long completion does not keep the whole batch running); ``embed(ids (B, T), mask (B, T)) -> (embeds (B, P + T, H), mask (B, P + T))``
  (a student's soft prompt) makes it generate from input embeddings instead;
* generation stops at any of ``stop_token_ids``: the tokenizer's EOS, the model's
  generation-config EOS ids and the chat template's end-of-turn token (SmolLM2's
  ``<|im_end|>``, Gemma's ``<end_of_turn>``). New ids are cut at the first of them;
* texts are decoded with special tokens stripped and cut at the first stop string
  (``Sampling.stop``); a row also ends as soon as its new text holds one (the prompt never
  counts, so a stop string cannot straddle prompt and completion);
* temperature 0 is greedy (one sequence, repeated ``n`` times); above it, ancestral sampling with
  ``temperature`` and ``top_p`` (no top-k truncation), from the caller's torch RNG;
* forward passes run with the model in eval mode, without grad, under ``autocast(precision)``
  (``cotdistill.precision``: bf16/fp16 autocast, the weights stay as they are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cotdistill.console import progress as progress_bar
from cotdistill.models.decode import DecodeSettings, decode
from cotdistill.precision import Precision, ResolvedPrecision, autocast, resolve_precision
from cotdistill.stopping import trim_at_stop

Embed = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
_MARKER = "cotdistill-end-of-turn-probe"


@dataclass(frozen=True)
class Sampling:
    """How to sample: ``n`` completions of at most ``max_new_tokens``, cut at any ``stop`` string."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    n: int = 1
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.temperature < 0 or self.n < 1 or not 0 < self.top_p <= 1:
            raise ValueError(
                f"bad generation settings: max_new_tokens={self.max_new_tokens}, temperature={self.temperature}, "
                f"n={self.n}, top_p={self.top_p}"
            )

    @property
    def sampled(self) -> bool:
        return self.temperature > 0


@dataclass(frozen=True)
class Completion:
    """One generated sample: its text and the new token ids it came from (stop token excluded)."""

    text: str
    token_ids: tuple[int, ...]


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The special token the chat template writes right after an assistant turn (None without one)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _MARKER}], tokenize=False
        )
    except Exception:  # templates may refuse this conversation; then there is no end-of-turn to find
        return None
    if not isinstance(text, str) or _MARKER not in text:
        return None
    tail = text[text.rindex(_MARKER) + len(_MARKER) :].lstrip()
    specials = {t.content: i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    matches = [token for token in specials if token and tail.startswith(token)]
    return specials[max(matches, key=len)] if matches else None


def stop_token_ids(model: nn.Module, tokenizer: Any) -> list[int]:
    """Ids that end a completion: the tokenizer's EOS, the generation config's EOS ids, the end-of-turn token."""
    ids = {tokenizer.eos_token_id, end_of_turn_id(tokenizer)}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def left_pad(
    batch: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)``, both (B, longest): each row right-aligned after ``pad_id`` padding."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + list(ids) for ids in batch], device=device)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
    return input_ids, mask


def longest_first(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into ``lengths`` grouped into batches of ``batch_size``, longest first (little padding)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class GenerationEngine:
    """Batched generation for one model + tokenizer (see the module docstring for the contract)."""

    def __init__(self, model: nn.Module, tokenizer: Any, *, embed: Embed | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.embed = embed
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = stop_token_ids(model, tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def config(self, sampling: Sampling) -> Any:
        """The ``transformers.GenerationConfig`` for ``sampling`` (greedy: one sequence per prompt)."""
        from transformers import GenerationConfig

        sampled = sampling.sampled
        return GenerationConfig(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sampled,
            temperature=sampling.temperature if sampled else None,
            top_k=0 if sampled else None,
            top_p=sampling.top_p if sampled else None,
            num_return_sequences=sampling.n if sampled else 1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop_ids,
            use_cache=True,
        )

    @torch.no_grad()
    def token_ids(
        self, batch: Sequence[Sequence[int]], config: Any, *, keep_eos: bool = False, stop: Sequence[str] = ()
    ) -> list[list[int]]:
        """New ids for each prompt of ``batch`` under ``config``: ``num_return_sequences`` rows per prompt.

        ``config`` is a ``transformers.GenerationConfig`` (``max_new_tokens``, ``do_sample``,
        ``temperature``, ``top_p``, ``num_return_sequences``, ``eos_token_id``); it runs on
        ``models.decode.decode``, which drops a row from the batch as soon as it ends. A row ends
        at the first of ``config.eos_token_id`` (kept when ``keep_eos``) or once its new text holds
        a ``stop`` string. The caller sets the mode and precision (``generate_batch`` does both).
        """
        input_ids, mask = left_pad(batch, self.tokenizer.pad_token_id, self.device)
        eos = config.eos_token_id
        eos = frozenset(eos if isinstance(eos, list) else [] if eos is None else [eos])
        sampled = bool(config.do_sample)
        settings = DecodeSettings(
            max_new_tokens=config.max_new_tokens,
            eos_ids=eos,
            temperature=float(config.temperature or 1.0) if sampled else 0.0,
            top_p=float(config.top_p or 1.0) if sampled else 1.0,
            n=config.num_return_sequences or 1,
        )
        done = StopText(self.tokenizer, stop) if any(stop) else None
        if self.embed is None:
            rows = decode(self.model, mask, settings, input_ids=input_ids, done=done)
        else:
            embeds, mask = self.embed(input_ids, mask)
            rows = decode(self.model, mask, settings, inputs_embeds=embeds, done=done)
        out = []
        for row in rows:
            cut = next((k for k, token in enumerate(row) if token in eos), None)
            out.append(row if cut is None else row[: cut + 1 if keep_eos else cut])
        return out

    def generate_batch(
        self, batch: Sequence[Sequence[int]], sampling: Sampling, precision: ResolvedPrecision | None = None
    ) -> list[list[Completion]]:
        """``sampling.n`` completions for each prompt of one batch, in batch order (shapes: (B, T) -> B x n)."""
        precision = precision or resolve_precision(Precision.FP32)
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast(precision, self.device):
                rows = self.token_ids(batch, self.config(sampling), stop=sampling.stop)
        finally:
            self.model.train(was_training)
        per = sampling.n if sampling.sampled else 1
        out = []
        for b in range(len(batch)):
            texts = [self._completion(row, sampling.stop) for row in rows[b * per : (b + 1) * per]]
            out.append(texts if sampling.sampled else texts * sampling.n)
        return out

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        sampling: Sampling,
        *,
        batch_size: int = 16,
        precision: ResolvedPrecision | None = None,
        progress: bool = False,
    ) -> list[list[Completion]]:
        """``generate_batch`` over ``prompts`` in longest-first batches; results in prompt order."""
        if batch_size < 1:
            raise ValueError(f"bad generation settings: batch_size={batch_size}")
        results: list[list[Completion]] = [[] for _ in prompts]
        batches = longest_first([len(p) for p in prompts], batch_size)
        for batch in progress_bar(batches, desc="generate", disable=not progress):
            for index, completions in zip(batch, self.generate_batch([prompts[i] for i in batch], sampling, precision)):
                results[index] = completions
        return results

    def _completion(self, row: list[int], stop: Sequence[str]) -> Completion:
        text = trim_at_stop(self.tokenizer.decode(row, skip_special_tokens=True), stop)
        return Completion(text, tuple(row))


class StopText:
    """``done(new_ids)``: whether the text of a row's new ids contains a stop string.

    Only the last ``4 * longest + 4`` ids are decoded (a stop string spans at most 4 byte-level
    tokens per character), so a check costs O(1) in the row's length; the prompt never counts.
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.window = 4 * max(len(s) for s in self.stop) + 4

    def __call__(self, new_ids: Sequence[int]) -> bool:
        tail = self.tokenizer.decode(list(new_ids[-self.window :]), skip_special_tokens=True)
        return any(s in tail for s in self.stop)
