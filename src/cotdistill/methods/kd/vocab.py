"""Teacher and student must share one vocabulary for logit-level KD; say where they differ."""

from __future__ import annotations

from typing import Any

from cotdistill.errors import CotDistillError


class VocabularyMismatchError(CotDistillError):
    """Teacher and student tokenizers (or logit widths) differ."""


def tokenizer_name(tokenizer: Any) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def check_vocabularies(
    student_tokenizer: Any, teacher_tokenizer: Any, student_logits: int, teacher_logits: int
) -> None:
    """Raise ``VocabularyMismatchError`` naming both tokenizers and the first ids that differ."""
    student_vocab = student_tokenizer.get_vocab()
    teacher_vocab = teacher_tokenizer.get_vocab()
    s_name, t_name = tokenizer_name(student_tokenizer), tokenizer_name(teacher_tokenizer)
    hint = (
        "logit-level KD needs one vocabulary; for a teacher with another tokenizer use TRL's GOLD trainer "
        "(trl.experimental.gold.GOLDConfig(use_uld_loss=True): universal logit distillation with token merging), "
        "or distil its text with method: sft"
    )
    if student_vocab != teacher_vocab:
        s_tokens = {i: t for t, i in student_vocab.items()}
        t_tokens = {i: t for t, i in teacher_vocab.items()}
        mismatched = [i for i in sorted(s_tokens.keys() | t_tokens.keys()) if s_tokens.get(i) != t_tokens.get(i)]
        shown = ", ".join(f"{i}: {s_tokens.get(i)!r} vs {t_tokens.get(i)!r}" for i in mismatched[:3])
        raise VocabularyMismatchError(
            f"student tokenizer {s_name} ({len(student_vocab)} tokens) and teacher tokenizer {t_name} "
            f"({len(teacher_vocab)} tokens) differ at {len(mismatched)} ids, first (student vs teacher) {shown}; {hint}"
        )
    if student_logits != teacher_logits:
        raise VocabularyMismatchError(
            f"student {s_name} has {student_logits} output logits but teacher {t_name} has {teacher_logits} "
            f"(same tokenizer, differently padded embeddings); {hint}"
        )
