"""Knobs of ``method: kd`` (and ``kd_prada``): the teacher, the divergence, its source, on-policy share."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from cotdistill.methods.kd.losses import Divergence
from cotdistill.methods.sft import SFTMethodConfig


class TeacherSource(StrEnum):
    ONLINE = "online"  # a local HF teacher, run on the same batch (full-vocabulary KD)
    TOPK = "topk"  # the teacher's top-k log-probs, computed once into an offline cache


@dataclass
class KDTeacherConfig:
    """The teacher: a local model (preset, directory, HF name, .gguf) or a served one (``base_url``)."""

    model: str = field(
        default="", metadata={"help": "local: a preset, directory, HF name or .gguf; served: the served model's name"}
    )
    base_url: str = field(
        default="", metadata={"help": "an OpenAI-compatible server (vLLM, llama.cpp) ending in /v1; empty: local"}
    )
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "env var holding the server's API key"})
    timeout_s: float = field(default=300.0, metadata={"help": "served: seconds per scoring request"})
    concurrency: int = field(default=4, metadata={"help": "served: scoring requests in flight at once"})
    trust_remote_code: bool = field(default=False, metadata={"help": "local: allow model code from the checkpoint"})

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ValueError("teacher.model must name the teacher model")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"teacher.base_url must be an http(s) URL, got {self.base_url!r}")
        if self.timeout_s <= 0 or self.concurrency < 1:
            raise ValueError(
                f"teacher.timeout_s must be > 0 and concurrency >= 1, got {self.timeout_s}, {self.concurrency}"
            )

    @property
    def served(self) -> bool:
        return bool(self.base_url)


@dataclass
class KDConfig(SFTMethodConfig):
    """Knobs of ``method: kd`` (the SFT knobs shape the rows and the CE term)."""

    teacher: KDTeacherConfig = field(
        default_factory=lambda: KDTeacherConfig(model="smollm2-135m-instruct"),
        metadata={"help": "the teacher: {model, base_url, api_key_env, ...}"},
    )
    divergence: Divergence = field(default=Divergence.FORWARD_KL, metadata={"help": "forward_kl | reverse_kl | jsd"})
    beta: float = field(default=0.5, metadata={"help": "jsd: 0 = forward KL, 1 = reverse KL (TRL's convention)"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature of both sides' logits"})
    kd_ratio: float = field(default=0.5, metadata={"help": "loss = (1 - kd_ratio) * CE + kd_ratio * divergence"})
    source: TeacherSource = field(
        default=TeacherSource.ONLINE,
        metadata={"help": "online (local teacher on each batch) | topk (offline top-k cache; required when served)"},
    )
    top_k: int = field(default=20, metadata={"help": "topk: teacher log-probs kept per position"})
    cache_dir: str = field(
        default="", metadata={"help": "topk: cache root (default $COTDISTILL_CACHE/kd-topk or ~/.cache/cotdistill)"}
    )
    score_batch_size: int = field(default=8, metadata={"help": "topk: rows the local teacher scores at once"})
    chunk_size: int = field(default=256, metadata={"help": "positions per chunk of the fp32 logits"})
    on_policy: float = field(
        default=0.0, metadata={"help": "share of micro-batches whose completions the student samples (GKD lambda)"}
    )
    max_new_tokens: int = field(default=128, metadata={"help": "on-policy: longest sampled completion"})
    sample_temperature: float = field(default=1.0, metadata={"help": "on-policy: the student's sampling temperature"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.divergence = Divergence(self.divergence)
        self.source = TeacherSource(self.source)
        for name in ("beta", "kd_ratio", "on_policy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.temperature <= 0 or self.sample_temperature <= 0:
            raise ValueError(
                f"temperature and sample_temperature must be > 0, got {self.temperature}, {self.sample_temperature}"
            )
        for name in ("top_k", "score_batch_size", "chunk_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.teacher.served and self.source is not TeacherSource.TOPK:
            raise ValueError("a served teacher (teacher.base_url) gives top-k log-probs: set source: topk")
        if self.teacher.served and self.temperature != 1.0:
            raise ValueError("a served teacher's log-probs are at temperature 1: set temperature: 1.0")
        if self.on_policy > 0 and self.source is not TeacherSource.ONLINE:
            raise ValueError("on_policy > 0 needs a teacher that scores new samples: set source: online")
