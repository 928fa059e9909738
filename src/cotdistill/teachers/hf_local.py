"""The ``hf`` teacher: a local transformers causal LM, batched with left padding and a KV cache.

Requests are grouped by sampling parameters (temperature, max_tokens, n, stop), sorted by
prompt length so batches pad little, and generated ``cfg.batch_size`` prompts at a time with
``num_return_sequences=n``. Chat ``messages`` go through the tokenizer's chat template when it
has one (else a plain ``Role: text`` transcript). Generation stops at EOS or a stop string and
texts are trimmed at the first stop string. Sampling is seeded per call from ``cfg.seed``
without disturbing the caller's global RNG. A batch that raises (e.g. out of memory) comes back
as error results for its requests; the other batches still run. ``cfg.precision`` is resolved
for the model's config and device (``cotdistill.precision``): on a GPU the frozen weights are
loaded in that dtype; on a CPU they stay fp32 and generation runs under bf16 autocast (measured
faster there than bf16 weights: ``benchmarks/results/generation_precision.md``). A model passed
in is used as it is.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cotdistill.errors import ConfigError
from cotdistill.precision import Precision, ResolvedPrecision, announce, autocast, resolve_precision
from cotdistill.teachers.base import (
    CompletionRequest,
    CompletionResult,
    TeacherConfig,
    register_teacher,
    trim_at_stop,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class HFTeacher:
    """Wraps a causal LM + tokenizer; ``model``/``tokenizer`` may be passed in instead of loaded."""

    def __init__(self, cfg: TeacherConfig, model: Any = None, tokenizer: Any = None):
        import torch

        self.cfg = cfg
        self.id = f"hf:{cfg.model}"
        self.device = torch.device(_resolve_device(cfg.device))
        self.precision = resolve_precision(Precision.FP32)  # a model passed in runs as it is
        if model is None or tokenizer is None:
            model, tokenizer, self.precision = _load(cfg, self.device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._calls = 0

    def render(self, request: CompletionRequest) -> tuple[list[int], bool]:
        """Token ids of the request's prompt, and whether the chat template produced them."""
        if request.messages is not None and getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"], True
        if request.messages is not None:
            text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in request.messages) + "Assistant:"
        else:
            text = request.prompt
        return self.tokenizer(text)["input_ids"], False

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        import torch

        results: dict[int, CompletionResult] = {}
        groups: dict[tuple, list[int]] = defaultdict(list)
        rendered: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            try:
                rendered[i] = self.render(request)[0]
            except Exception as exc:  # a template or tokenizer error belongs to this request only
                results[i] = CompletionResult(request.key, [], error=f"could not build the prompt: {exc}")
                continue
            groups[(request.temperature, request.max_tokens, request.n, tuple(request.stop or ()))].append(i)
        self._calls += 1
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed * 1_000_003 + self._calls)
            for indices in groups.values():
                indices.sort(key=lambda i: len(rendered[i]), reverse=True)
                for start in range(0, len(indices), self.cfg.batch_size):
                    chunk = indices[start : start + self.cfg.batch_size]
                    batch = [requests[i] for i in chunk]
                    for i, result in zip(chunk, self._generate_batch(batch, [rendered[i] for i in chunk])):
                        results[i] = result
        return [results[i] for i in range(len(requests))]

    def _generate_batch(self, batch: list[CompletionRequest], ids: list[list[int]]) -> list[CompletionResult]:
        """Generate for requests sharing sampling parameters; shapes: input (B, L) -> output (B*n, L+T)."""
        import torch

        first = batch[0]
        start = time.perf_counter()
        try:
            encoded = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt").to(self.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": first.max_tokens,
                "num_return_sequences": first.n,
                "pad_token_id": self.tokenizer.pad_token_id,
                "use_cache": True,
            }
            if first.temperature > 0:
                kwargs.update(do_sample=True, temperature=first.temperature, top_p=self.cfg.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if first.stop:
                kwargs.update(stop_strings=list(first.stop), tokenizer=self.tokenizer)
            with torch.inference_mode(), autocast(self.precision, self.device):
                output = self.model.generate(**encoded, **kwargs)
        except Exception as exc:  # report, never raise mid-batch
            logger.warning("hf teacher: a batch of %d failed: %s", len(batch), exc)
            return [CompletionResult(r.key, [], error=f"generation failed: {type(exc).__name__}: {exc}") for r in batch]
        latency = (time.perf_counter() - start) / len(batch)
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        eos = _eos_ids(self.model, self.tokenizer)
        results = []
        for b, request in enumerate(batch):
            rows = [_cut_at_eos(new_tokens[b * first.n + j], eos) for j in range(first.n)]
            texts = [trim_at_stop(self.tokenizer.decode(row, skip_special_tokens=True), request.stop) for row in rows]
            completion = sum(len(row) for row in rows)
            usage = {"prompt_tokens": len(ids[b]), "completion_tokens": completion}
            usage["total_tokens"] = usage["prompt_tokens"] + completion
            results.append(CompletionResult(request.key, texts, usage=usage, latency_s=latency))
        return results


def _cut_at_eos(row: list[int], eos: set[int]) -> list[int]:
    """Generated ids up to the first EOS (exclusive; padding after EOS is EOS or pad)."""
    for i, token in enumerate(row):
        if token in eos:
            return row[:i]
    return row


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is not None:
        found.add(tokenizer.pad_token_id)
    return found


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _load(cfg: TeacherConfig, device: torch.device) -> tuple[Any, Any, ResolvedPrecision]:
    """Model, tokenizer and the precision to autocast in (fp32 when the weights are already in its dtype)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from cotdistill.models.pull import resolve_model

    name = resolve_model(cfg.model)
    extra = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=cfg.trust_remote_code, **extra)
        precision = resolve_precision(cfg.precision, config, device, purpose="generate", key="teacher.precision")
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=cfg.trust_remote_code, **extra)
        weights = precision.dtype if device.type == "cuda" else torch.float32  # CPUs: autocast measured faster
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=weights, trust_remote_code=cfg.trust_remote_code, **extra
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"teacher.model: cannot load HF model {cfg.model!r}: {exc}. Give a local directory "
            "(e.g. the one `cotdistill models pull smollm2-135m-instruct` writes); the hub is not reachable here."
        ) from None
    announce(precision, "hf teacher")
    autocast_in = precision if weights == torch.float32 else resolve_precision(Precision.FP32)
    return model.to(device), tokenizer, autocast_in


@register_teacher("hf")
def build_hf(cfg: TeacherConfig) -> HFTeacher:
    return HFTeacher(cfg)
