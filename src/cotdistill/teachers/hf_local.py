"""The ``hf`` teacher: a local transformers causal LM on the shared ``models.generation`` engine.

Requests are grouped by sampling parameters (temperature, max_tokens, n, stop), sorted by
prompt length so batches pad little, and generated ``batch_size`` prompts at a time by
``GenerationEngine`` (its stop rule: EOS and the chat template's end-of-turn token, then the
first stop string; greedy at temperature 0, else temperature + ``top_p`` sampling). Chat
``messages`` go through the tokenizer's chat template when it has one (else a plain
``Role: text`` transcript). Sampling is seeded per call from ``seed`` without disturbing the
caller's global RNG. A batch that raises (e.g. out of memory) comes back as error results for
its requests; the other batches still run. ``precision`` is resolved for the model's config and
device (``cotdistill.precision``): on a GPU the frozen weights are loaded in that dtype; on a
CPU they stay fp32 and generation runs under bf16 autocast (measured faster there than bf16
weights: ``benchmarks/results/generation_precision.md``). A model passed in is used as it is.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cotdistill.errors import ConfigError
from cotdistill.models.generation import GenerationEngine, Sampling, longest_first
from cotdistill.models.short_attention import use_short_attention
from cotdistill.precision import (
    PRECISION_HELP,
    Precision,
    ResolvedPrecision,
    announce,
    legacy_precision,
    resolve_precision,
)
from cotdistill.teachers.base import (
    CompletionRequest,
    CompletionResult,
    TeacherConfig,
    check_top_p,
    register_teacher,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass
class HFTeacherConfig:
    """The ``hf`` backend's settings (``TeacherConfig.options``)."""

    model: str = field(default="", metadata={"help": "a local HF directory, a `cotdistill models` preset or a name"})
    batch_size: int = field(default=8, metadata={"help": "prompts per generate() call"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:1, ... or auto"})
    precision: Precision = field(
        default=Precision.AUTO, metadata={"help": f"weights and compute precision: {PRECISION_HELP}"}
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = field(
        default=None, metadata={"help": "deprecated: write precision (fp32, bf16, fp16 or auto)"}
    )
    gguf_file: str | None = field(default=None, metadata={"help": "a .gguf file inside `model` to load from"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "run model code shipped with the checkpoint (off unless you trust it)"}
    )
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass when temperature > 0"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})

    def __post_init__(self) -> None:
        self.precision = legacy_precision("dtype", self.dtype, self.precision)
        self.dtype = None
        if not self.model:
            raise ValueError("backend 'hf' needs `model` (a HF directory or a `cotdistill models` preset)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_top_p(self.top_p)


class HFTeacher:
    """Wraps a causal LM + tokenizer; ``model``/``tokenizer`` may be passed in instead of loaded."""

    def __init__(self, config: TeacherConfig, model: Any = None, tokenizer: Any = None):
        import torch

        self.cfg = cfg = config.section(HFTeacherConfig)
        self.id = f"hf:{cfg.model}"
        self.device = torch.device(_resolve_device(cfg.device))
        self.precision = resolve_precision(Precision.FP32)  # a model passed in runs as it is
        if model is None or tokenizer is None:
            model, tokenizer, self.precision = _load(config, self.device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.engine = GenerationEngine(self.model, self.tokenizer)
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
        groups: dict[Sampling, list[int]] = defaultdict(list)
        rendered: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            try:
                rendered[i] = self.render(request)[0]
            except Exception as exc:  # a template or tokenizer error belongs to this request only
                results[i] = CompletionResult(request.key, [], error=f"could not build the prompt: {exc}")
                continue
            stop = tuple(s for s in request.stop or () if s)
            sampling = Sampling(request.max_tokens, request.temperature, request.n, self.cfg.top_p, stop)
            groups[sampling].append(i)
        self._calls += 1
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed * 1_000_003 + self._calls)
            for sampling, indices in groups.items():
                for batch in longest_first([len(rendered[i]) for i in indices], self.cfg.batch_size):
                    chunk = [indices[b] for b in batch]
                    prompts = [rendered[i] for i in chunk]
                    batch_results = self._generate_batch([requests[i] for i in chunk], prompts, sampling)
                    results.update(zip(chunk, batch_results))
        return [results[i] for i in range(len(requests))]

    def _generate_batch(
        self, batch: list[CompletionRequest], ids: list[list[int]], sampling: Sampling
    ) -> list[CompletionResult]:
        """Generate for requests sharing ``sampling``: B prompts -> B results of ``sampling.n`` texts."""
        start = time.perf_counter()
        try:
            completions = self.engine.generate_batch(ids, sampling, self.precision)
        except Exception as exc:  # report, never raise mid-batch
            logger.warning("hf teacher: a batch of %d failed: %s", len(batch), exc)
            return [CompletionResult(r.key, [], error=f"generation failed: {type(exc).__name__}: {exc}") for r in batch]
        latency = (time.perf_counter() - start) / len(batch)
        results = []
        for request, prompt, samples in zip(batch, ids, completions):
            completion = sum(len(c.token_ids) for c in samples)
            usage = {"prompt_tokens": len(prompt), "completion_tokens": completion}
            usage["total_tokens"] = usage["prompt_tokens"] + completion
            texts = [c.text for c in samples]
            results.append(CompletionResult(request.key, texts, usage=usage, latency_s=latency))
        return results


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _load(config: TeacherConfig, device: torch.device) -> tuple[Any, Any, ResolvedPrecision]:
    """Model, tokenizer and the precision to autocast in (fp32 when the weights are already in its dtype)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from cotdistill.models.pull import resolve_model

    cfg = config.section(HFTeacherConfig)
    name = resolve_model(cfg.model)
    extra = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
    try:
        model_config = AutoConfig.from_pretrained(name, trust_remote_code=cfg.trust_remote_code, **extra)
        precision = resolve_precision(cfg.precision, model_config, device, purpose="generate", key="teacher.precision")
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
    use_short_attention(model)
    autocast_in = precision if weights == torch.float32 else resolve_precision(Precision.FP32)
    return model.to(device), tokenizer, autocast_in


@register_teacher("hf", HFTeacherConfig)
def build_hf(cfg: TeacherConfig) -> HFTeacher:
    return HFTeacher(cfg)
