"""The frozen local teacher and the one place logits are made from hidden states.

Positions follow ``StudentModule``: the hidden state at ``t`` predicts the token at ``t + 1``,
and a position counts when ``labels[t + 1] != -100`` (the completion and its EOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cotdistill.methods.data import IGNORE_INDEX
from cotdistill.methods.kd.config import KDTeacherConfig


def completion_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) labels -> (B, T - 1) mask of the positions whose next token is a completion token."""
    return labels[:, 1:] != IGNORE_INDEX


def head_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """(n, H) hidden states -> (n, V) fp32 logits (final soft-capping applied when the model has it)."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


@dataclass
class LocalTeacher:
    """A frozen causal LM (eval mode, no gradients) and its tokenizer."""

    model: nn.Module
    tokenizer: Any
    name: str

    @classmethod
    def load(cls, cfg: KDTeacherConfig, device: torch.device) -> LocalTeacher:
        from cotdistill.models.loading import StudentConfig, load_student

        loaded = load_student(StudentConfig(model=cfg.model, trust_remote_code=cfg.trust_remote_code), key="teacher")
        model = loaded.model.to(device).eval().requires_grad_(False)
        return cls(model, loaded.tokenizer, cfg.model)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @torch.no_grad()
    def selected_hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """(N, H) last hidden states at the completion positions, rows in order."""
        out = self.model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state[:, :-1][completion_mask(labels)]

    @torch.no_grad()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return head_logits(self.model, hidden)
