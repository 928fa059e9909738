"""What the ``sft`` family of trainers optimises: ``StudentModule`` and its completion loss.

``StudentModule`` holds the student's model, its soft prompt and a method's extra modules. Its
forward goes through ``student.embed_inputs`` (soft prompt included) and the decoder, and applies
the LM head only at labelled positions (no logits for prompt or padding tokens); it returns the
summed token loss and the number of labelled tokens (``SFTOutput``), which ``StudentTrainer``
divides over the whole accumulated batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from cotdistill.methods.data import IGNORE_INDEX
from cotdistill.models.student import Student
from cotdistill.nn.losses import linear_cross_entropy

CHUNKED_LOSS_MIN_LOGITS = 2**26  # 256 MiB of fp32 logits


@dataclass
class SFTOutput(ModelOutput):
    """``loss_sum``: weighted token cross-entropy summed over labelled tokens (scalar);
    ``num_tokens``: labelled tokens in the batch; ``last_hidden_state`` (B, P + T, H) and
    ``hidden_states`` (when requested) include the ``prefix_length`` soft-prompt positions."""

    loss_sum: torch.Tensor | None = None
    num_tokens: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    prefix_length: int | None = None


def completion_loss_sum(
    head: nn.Module,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    token_weight: torch.Tensor | None,
    softcap: float | None,
) -> torch.Tensor:
    """Weighted token cross-entropy of ``head(hidden)`` (N, H) against ``targets`` (N,), summed (fp32).

    When the fp32 logits would exceed ``CHUNKED_LOSS_MIN_LOGITS`` values and the head is a plain
    bias-free ``nn.Linear``, the loss goes through ``nn.losses.linear_cross_entropy`` (chunked, no
    (N, V) fp32 logits kept: a large-vocabulary model such as Gemma 3 saves about 1 GB per
    micro-batch); otherwise (smaller batches, where the plain path measured about 10% faster on
    a CPU, or a LoRA-wrapped or sharded head) the head is called and ``F.cross_entropy`` runs on
    its fp32 logits.
    """
    weight = getattr(head, "weight", None)
    plain = type(head) is nn.Linear and head.bias is None and type(weight) is nn.Parameter
    large = plain and hidden.shape[0] * weight.shape[0] >= CHUNKED_LOSS_MIN_LOGITS
    if large and weight.dim() == 2 and not hasattr(weight, "ds_id"):
        return linear_cross_entropy(hidden, weight, targets, token_weight, softcap=softcap)
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    token_loss = F.cross_entropy(logits, targets, reduction="none")
    return (token_loss if token_weight is None else token_loss * token_weight).sum()


class StudentModule(nn.Module):
    """What the Trainer optimises: the student's model, its soft prompt and any extra modules."""

    accepts_loss_kwargs = True  # the Trainer then counts completion tokens across micro-batches

    def __init__(self, student: Student, extra_modules: dict[str, nn.Module] | None = None):
        super().__init__()
        self.model = student.model
        self.soft_prompt = student.soft_prompt
        self.extra = nn.ModuleDict(extra_modules or {})
        # False: rows without a labelled token (unlabelled target questions) send no gradient into
        # the input embeddings (token embeddings, soft prompt); their hidden states still train the
        # layers above. Set by methods whose auxiliary loss is the only gradient those rows have.
        self.unlabelled_rows_train_embeddings = True
        object.__setattr__(self, "student", student)  # a plain reference, not a submodule

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        weight: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> SFTOutput:
        embeds, mask = self.student.embed_inputs(input_ids, attention_mask, domain_ids)
        if not self.unlabelled_rows_train_embeddings and embeds.requires_grad:
            labelled = (labels != IGNORE_INDEX).any(dim=1)[:, None, None]
            embeds = torch.where(labelled, embeds, embeds.detach())
        decoder_out = self.model.get_decoder()(
            inputs_embeds=embeds, attention_mask=mask, use_cache=False, output_hidden_states=output_hidden_states
        )
        prefix = embeds.shape[1] - input_ids.shape[1]
        hidden = decoder_out.last_hidden_state[:, prefix:-1]
        targets = labels[:, 1:]
        selected = targets != IGNORE_INDEX
        token_weight = weight[:, None].expand_as(targets)[selected] if weight is not None else None
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        loss_sum = completion_loss_sum(
            self.model.get_output_embeddings(), hidden[selected], targets[selected], token_weight, cap
        )
        return SFTOutput(
            loss_sum=loss_sum,
            num_tokens=selected.sum(),
            last_hidden_state=decoder_out.last_hidden_state,
            hidden_states=decoder_out.hidden_states if output_hidden_states else None,
            prefix_length=prefix,
        )
