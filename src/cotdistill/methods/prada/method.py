"""``PRADA``: the registered method (rows, soft prompt, discriminator, training)."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from cotdistill.errors import CotDistillError
from cotdistill.methods.base import TrainConfig, TrainData, register_method
from cotdistill.methods.data import make_row
from cotdistill.methods.prada.config import Alignment, DomainLabels, PRADAConfig
from cotdistill.methods.prada.trainer import DISCRIMINATOR, PRADATrainer
from cotdistill.methods.sft import SFT
from cotdistill.models.student import Student
from cotdistill.nn import DomainDiscriminator, Pooling, SoftPrompt

log = logging.getLogger(__name__)


@register_method("prada")
class PRADA(SFT):
    """SFT + gradient-reversed domain discriminator + P-tuning soft prompts (each switchable)."""

    Config = PRADAConfig
    trainer_class = PRADATrainer

    @staticmethod
    def domains(data: TrainData) -> tuple[list[str], list[str]]:
        """Sorted source (labelled) and target (unlabelled-only) domain names."""
        sources = sorted({e.domain for e in data.labelled})
        targets = sorted({e.domain for e in data.unlabelled} - set(sources))
        return sources, targets

    def domain_classes(self, data: TrainData, config: PRADAConfig) -> list[int]:
        """Discriminator class of each domain index (domain order: sources then targets); -1 for a
        domain the discriminator does not see (``align: family``)."""
        sources, targets = self.domains(data)
        seen = self.aligned_domains(data, config)
        if config.domain_labels is DomainLabels.SOURCE_TARGET:
            labels = [0] * len(sources) + [1] * len(targets)
        else:
            labels = list(range(len(sources) + len(targets)))
        kept = [label if domain in seen else -1 for domain, label in zip([*sources, *targets], labels)]
        remap = {label: i for i, label in enumerate(sorted({k for k in kept if k >= 0}))}
        return [remap.get(label, -1) for label in kept]

    def aligned_domains(self, data: TrainData, config: PRADAConfig) -> set[str]:
        """The domains the discriminator sees: ``align_domains``, all, or those of families with a source and a
        target."""
        sources, targets = self.domains(data)
        if config.align_domains:
            unknown = sorted(set(config.align_domains) - {*sources, *targets})
            if unknown:
                raise CotDistillError(
                    f"prada align_domains names {unknown}, which are neither source nor target domains "
                    f"(sources {sources}, targets {targets})"
                )
            return set(config.align_domains)
        if config.align is Alignment.ALL:
            return {*sources, *targets}
        shared = {data.family(d) for d in sources} & {data.family(d) for d in targets}
        return {d for d in [*sources, *targets] if data.family(d) in shared}

    def build_rows(self, student: Student, data: TrainData, config: PRADAConfig, train: TrainConfig) -> list[dict]:
        """SFT rows (in example order, as SFT builds them), then, when adversarial, question-only
        target rows; every row carries ``domain_ids`` (sources first, then targets, sorted)."""
        sources, targets = self.domains(data)
        index = {name: i for i, name in enumerate([*sources, *targets])}
        rows = []
        for example in data.labelled:
            part = TrainData([example], instructions=data.instructions)
            rows += [
                {**row, "domain_ids": index[example.domain]} for row in super().build_rows(student, part, config, train)
            ]
        if config.adversarial:
            seen = self.aligned_domains(data, config)
            for example in (e for e in data.unlabelled if e.domain in seen):
                instruction = data.instruction(example.domain) if config.use_instruction else None
                row = make_row(
                    student, student.prompt(example.question, instruction), None, max_length=train.max_length
                )
                rows.append({**row, "domain_ids": index[example.domain]})
        return rows

    def extra_modules(self, student: Student, data: TrainData, config: PRADAConfig) -> dict[str, nn.Module]:
        """The domain discriminator (adversarial runs only)."""
        if not config.adversarial:
            return {}
        hidden = student.model.get_input_embeddings().embedding_dim
        return {
            DISCRIMINATOR: DomainDiscriminator(
                hidden,
                max(self.domain_classes(data, config)) + 1,
                hidden_size=config.discriminator_hidden,
                num_layers=config.discriminator_layers,
                dropout=config.discriminator_dropout,
            ).to(student.device)
        }

    def attach_soft_prompt(self, student: Student, data: TrainData, config: PRADAConfig) -> None:
        """Give ``student`` a fresh soft prompt (kept if it already has one, e.g. when resuming)."""
        if not config.soft_prompts or student.soft_prompt is not None:
            return
        sources, targets = self.domains(data)
        embeddings = student.model.get_input_embeddings().weight
        prompt = SoftPrompt(config.prompt, embeddings.shape[1], [*sources, *targets])
        prompt.match_scale(embeddings.detach())
        student.soft_prompt = prompt.to(student.device)

    def train(
        self,
        student: Student,
        data: TrainData,
        train: TrainConfig,
        config: PRADAConfig,
        output_dir: str | Path,
        *,
        resume: bool = False,
    ) -> Student:
        """Train ``student`` in place (soft prompt attached first); saves ``output_dir/final``."""
        sources, targets = self.domains(data)
        classes = self.domain_classes(data, config)
        if config.adversarial and len({c for c in classes if c >= 0}) < 2:
            raise CotDistillError(
                f"prada needs two domain classes to be adversarial; got sources {sources} and targets {targets} "
                f"with align '{config.align}' (add unlabelled target questions, set method.align=all, or set "
                "method.adversarial=false)"
            )
        if config.adversarial and config.pooling is Pooling.PROMPT:
            log.warning(
                "pooling 'prompt': the soft prompt comes before the question, so in a decoder-only student its "
                "hidden states do not depend on the question; the discriminator sees only the per-domain prompt "
                "tokens (%d). Use mean or last pooling to align question features.",
                config.prompt.per_domain_tokens,
            )
        torch.manual_seed(train.seed)  # the prompt and discriminator initialisation follow the run's seed
        self.attach_soft_prompt(student, data, config)
        self.trainer_class = partial(self.trainer_class, domain_classes=classes)  # composes with subclasses
        batch = replace(train, batch_size=train.batch_size + config.rows_per_batch_extra)
        return super().train(student, data, batch, config, output_dir, resume=resume)
