"""P-tuning soft prompts: virtual tokens prepended to the student's input embeddings.

A ``SoftPrompt`` holds ``num_tokens`` virtual tokens shared by every domain and, optionally,
``per_domain_tokens`` more per known domain. Each group is a peft ``PromptEncoder`` (embedding
followed by an MLP or bi-LSTM reparameterisation), or plain embeddings (``none``, i.e. prompt
tuning). ``soft_prompt(batch_size, domain_ids)`` returns (B, P, H) with P = ``length``; rows whose
domain is unknown (id -1) get the mean of the per-domain prompts. The prompt is a separate
module from the model, so it works the same with LoRA and with full fine-tuning.

On disk: ``soft_prompt.safetensors`` (weights) + ``soft_prompt.json`` (shape and config).

``SOFT_PROMPTS`` is the registry a saved student names its soft-prompt class from
(``register_soft_prompt(name)``); loading a checkpoint never imports anything else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import torch
from peft import PromptEncoder, PromptEncoderConfig
from peft.tuners.p_tuning.config import PromptEncoderReparameterizationType
from safetensors.torch import load_file, save_file
from torch import nn

from cotdistill.config import from_dict, to_dict
from cotdistill.errors import DataError
from cotdistill.io import atomic_write_json
from cotdistill.registry import Registry

WEIGHTS_NAME = "soft_prompt.safetensors"
CONFIG_NAME = "soft_prompt.json"


class Reparameterization(StrEnum):
    MLP = "mlp"
    LSTM = "lstm"
    NONE = "none"  # plain trainable embeddings (prompt tuning)


@dataclass
class SoftPromptConfig:
    num_tokens: int = field(default=8, metadata={"help": "virtual tokens shared by all domains"})
    per_domain_tokens: int = field(
        default=0, metadata={"help": "extra virtual tokens per domain (0 = shared prompt only)"}
    )
    reparameterization: Reparameterization = field(
        default=Reparameterization.MLP, metadata={"help": "mlp | lstm | none: how virtual tokens are produced"}
    )
    encoder_hidden_size: int = field(
        default=0, metadata={"help": "width of the reparameterisation network (0 = the model's hidden size)"}
    )

    def __post_init__(self) -> None:
        self.reparameterization = Reparameterization(self.reparameterization)
        if self.num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {self.num_tokens}")
        if self.per_domain_tokens < 0:
            raise ValueError(f"per_domain_tokens must be >= 0, got {self.per_domain_tokens}")
        if self.encoder_hidden_size < 0:
            raise ValueError(f"encoder_hidden_size must be >= 0, got {self.encoder_hidden_size}")


def _encoder(num_tokens: int, token_dim: int, config: SoftPromptConfig) -> nn.Module:
    if config.reparameterization is Reparameterization.NONE:
        return nn.Embedding(num_tokens, token_dim)
    kind = {
        Reparameterization.MLP: PromptEncoderReparameterizationType.MLP,
        Reparameterization.LSTM: PromptEncoderReparameterizationType.LSTM,
    }[config.reparameterization]
    peft_config = PromptEncoderConfig(
        num_virtual_tokens=num_tokens,
        token_dim=token_dim,
        num_transformer_submodules=1,
        encoder_reparameterization_type=kind,
        encoder_hidden_size=config.encoder_hidden_size or token_dim,
    )
    return PromptEncoder(peft_config)


SOFT_PROMPTS: Registry[type[nn.Module]] = Registry("soft prompt")


def register_soft_prompt(name: str):
    """Class decorator: a soft-prompt class (with ``save(dir)`` and classmethod ``load(dir)``) a checkpoint may name."""
    return SOFT_PROMPTS.register(name)


@register_soft_prompt("p_tuning")
class SoftPrompt(nn.Module):
    """Virtual-token embeddings of width ``token_dim``: ``forward(B, domain_ids=None) -> (B, length, token_dim)``."""

    def __init__(self, config: SoftPromptConfig, token_dim: int, domains: Sequence[str] = ()):
        super().__init__()
        if config.per_domain_tokens and len(domains) < 1:
            raise ValueError("per-domain prompts need the list of domains")
        self.config = config
        self.token_dim = token_dim
        self.domains = list(domains)
        self.shared = _encoder(config.num_tokens, token_dim, config)
        self.per_domain = (
            _encoder(config.per_domain_tokens * len(self.domains), token_dim, config)
            if config.per_domain_tokens
            else None
        )
        self.register_buffer("output_scale", torch.ones(()))

    @property
    def length(self) -> int:
        """Number of virtual tokens P prepended to every row."""
        return self.config.num_tokens + (self.config.per_domain_tokens if self.per_domain is not None else 0)

    def domain_ids(self, names: Sequence[str]) -> torch.Tensor:
        """Map domain names to ids (B,); a domain the prompt was not built with maps to -1."""
        index = {name: i for i, name in enumerate(self.domains)}
        return torch.tensor([index.get(name, -1) for name in names], dtype=torch.long, device=self.output_scale.device)

    def _tokens(self, encoder: nn.Module, count: int) -> torch.Tensor:
        """(count, token_dim) virtual-token embeddings from one encoder."""
        indices = torch.arange(count, device=self.output_scale.device)
        return encoder(indices.unsqueeze(0))[0] * self.output_scale

    def forward(self, batch_size: int, domain_ids: torch.Tensor | None = None) -> torch.Tensor:
        shared = self._tokens(self.shared, self.config.num_tokens).unsqueeze(0).expand(batch_size, -1, -1)
        if self.per_domain is None:
            return shared
        per = self.config.per_domain_tokens
        table = self._tokens(self.per_domain, per * len(self.domains)).view(len(self.domains), per, self.token_dim)
        if domain_ids is None:
            domain_ids = torch.full((batch_size,), -1, dtype=torch.long, device=table.device)
        if domain_ids.shape != (batch_size,):
            raise ValueError(f"domain_ids must have shape ({batch_size},), got {tuple(domain_ids.shape)}")
        known = domain_ids >= 0
        picked = table[domain_ids.clamp(min=0)]
        mean = table.mean(dim=0).expand_as(picked)
        own = torch.where(known.view(-1, 1, 1), picked, mean)
        return torch.cat([shared, own], dim=1)

    @torch.no_grad()
    def match_scale(self, reference: torch.Tensor) -> None:
        """Rescale the output so its RMS matches ``reference`` (e.g. the token embedding matrix)."""
        self.output_scale.fill_(1.0)
        current = self._tokens(self.shared, self.config.num_tokens).float().pow(2).mean().sqrt()
        target = reference.float().pow(2).mean().sqrt()
        self.output_scale.fill_((target / current.clamp(min=1e-8)).item())

    def save(self, directory: str | Path) -> None:
        """Write ``soft_prompt.safetensors`` and ``soft_prompt.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME))
        atomic_write_json(
            directory / CONFIG_NAME,
            {"config": to_dict(self.config), "token_dim": self.token_dim, "domains": self.domains},
        )

    @classmethod
    def exists(cls, directory: str | Path) -> bool:
        return (Path(directory) / CONFIG_NAME).is_file()

    @classmethod
    def load(cls, directory: str | Path) -> SoftPrompt:
        """Rebuild a prompt saved by ``save`` (on CPU, fp32)."""
        path = Path(directory) / CONFIG_NAME
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            config = from_dict(SoftPromptConfig, meta["config"], where=str(path), prefix="config.")
            prompt = cls(config, int(meta["token_dim"]), meta.get("domains", []))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"cannot read soft prompt config: {exc}", path=str(path)) from None
        prompt.load_state_dict(load_file(str(Path(directory) / WEIGHTS_NAME)))
        return prompt
