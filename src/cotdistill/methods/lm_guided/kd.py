"""Stage 1: knowledge distillation of teacher rationales into the rationale model.

The teacher sees the same context + question as the rationale model (``data.guided_example``);
its samples are filtered by ``GenerateConfig.keep`` (answer correctness by default) and stored by
``distill.generate_rationales`` (resumable). The rationale model is then fine-tuned on the kept
rationales with the registered ``sft`` method, under the shared rationale instruction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.store import load_kept
from cotdistill.errors import CotDistillError
from cotdistill.methods.base import METHODS, TrainConfig, TrainData
from cotdistill.methods.lm_guided.data import RATIONALE_INSTRUCTION, guided_example
from cotdistill.tasks import Example, Task
from cotdistill.teachers import Teacher


def teacher_rationales(
    cfg: GenerateConfig,
    examples: Sequence[Example],
    task: Task,
    out_dir: str | Path,
    teacher: Teacher | None = None,
    *,
    show_progress: bool = True,
) -> list[Example]:
    """Kept teacher rationales as guided examples (context + question; ``meta`` of the original)."""
    guided = [guided_example(e) for e in examples]
    shots = [g for g in guided if g.rationale]
    domains = {e.domain for e in guided}
    generate_rationales(
        cfg,
        guided,
        out_dir,
        teacher,
        shots={d: [s for s in shots if s.domain == d] for d in domains},
        tasks=dict.fromkeys(domains, task),
        show_progress=show_progress,
    )
    by_id = {e.id: e for e in guided}
    kept = [
        dataclasses.replace(by_id[source], id=k.id, rationale=k.rationale, answer=k.answer)
        for k in load_kept(out_dir)
        if (source := k.meta.get("example_id")) in by_id
    ]
    if not kept:
        raise CotDistillError(
            f"{out_dir}: the teacher produced no kept rationale for {len(examples)} questions "
            "(check the teacher or use generate.keep: all; the oracle teacher needs gold rationales, "
            "which files such as HotpotQA do not have: use an openai or hf teacher there)"
        )
    return kept


def distill(
    student: Any,
    kept: list[Example],
    train: TrainConfig,
    sft_config: Any,
    output_dir: str | Path,
    *,
    instructions: Mapping[str, str] | None = None,
    unlabelled: Sequence[Example] = (),
    resume: bool = False,
) -> Any:
    """Stage 1: fine-tune ``student`` on the kept rationales with the ``sft`` method; returns the KD student.

    ``instructions`` maps a domain to its prompt instruction (default: ``RATIONALE_INSTRUCTION``).
    """
    if instructions is None:
        instructions = dict.fromkeys({e.domain for e in kept}, RATIONALE_INSTRUCTION)
    data = TrainData(labelled=kept, unlabelled=list(unlabelled), instructions=dict(instructions))
    sft = METHODS.get("sft")()
    return sft.train(student, data, train, sft_config, output_dir, resume=resume)
