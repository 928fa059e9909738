"""``method: kd`` (logit-level distillation) and ``method: kd_prada`` (KD plus PRADA's adversary).

``KD.train`` loads the teacher, checks that teacher and student share one vocabulary, builds
the teacher source (online, or the offline top-k cache, computed once and reused), then trains
like SFT with ``KDTrainer``. ``KDPRADA`` is the same with PRADA's rows, soft prompts and
discriminator (``KDPRADATrainer``); nothing of either method is copied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cotdistill.methods.base import TrainConfig, TrainData, register_method
from cotdistill.methods.kd.cache import TopKCache, TopKScorer, default_cache_root
from cotdistill.methods.kd.config import KDConfig, TeacherSource
from cotdistill.methods.kd.scoring import LocalScorer
from cotdistill.methods.kd.served import ServedScorer
from cotdistill.methods.kd.sources import OnlineSource, TopKSource
from cotdistill.methods.kd.teacher import LocalTeacher
from cotdistill.methods.kd.trainer import KDPRADATrainer, KDTrainer
from cotdistill.methods.kd.vocab import check_vocabularies
from cotdistill.methods.prada import PRADA, PRADAConfig
from cotdistill.methods.sft import FINAL_DIR, SFT
from cotdistill.models.student import STUDENT_FILE, Student

log = logging.getLogger(__name__)


def load_local_teacher(student: Student, config: KDConfig) -> LocalTeacher:
    """The frozen teacher, after checking it shares the student's vocabulary."""
    teacher = LocalTeacher.load(config.teacher, student.device)
    student_logits = int(student.model.get_output_embeddings().weight.shape[0])
    check_vocabularies(student.tokenizer, teacher.tokenizer, student_logits, teacher.vocab_size)
    return teacher


@register_method("kd")
class KD(SFT):
    """CE on the teacher's rationales mixed with a divergence to the teacher's next-token distribution."""

    Config = KDConfig
    trainer_class = KDTrainer

    def teacher_source(
        self, student: Student, data: TrainData, train: TrainConfig, config: KDConfig
    ) -> OnlineSource | TopKSource:
        """The online teacher, or the loaded top-k cache of this run's rows (built when missing)."""
        scorer: TopKScorer
        if config.teacher.served:
            scorer = ServedScorer(config.teacher, student.tokenizer)
        else:
            teacher = load_local_teacher(student, config)
            if config.source is TeacherSource.ONLINE:
                return OnlineSource(teacher)
            scorer = LocalScorer(
                teacher,
                temperature=config.temperature,
                batch_size=config.score_batch_size,
                chunk_size=config.chunk_size,
            )
        rows = self.build_rows(student, data, config, train)
        vocab = int(student.model.get_output_embeddings().weight.shape[0])
        k = min(config.top_k, vocab)
        cache = TopKCache(config.cache_dir or default_cache_root(), rows, scorer, k=k, temperature=config.temperature)
        cache.build(show_progress=train.progress)
        log.info("top-k cache: %s", cache.directory)
        return TopKSource(cache.load(), vocab, scorer.id)

    def train(
        self,
        student: Student,
        data: TrainData,
        train: TrainConfig,
        config: KDConfig,
        output_dir: str | Path,
        *,
        resume: bool = False,
    ) -> Student:
        """Train ``student`` in place against the teacher; saves ``output_dir/final``."""
        if not (resume and (Path(output_dir) / FINAL_DIR / STUDENT_FILE).exists()):
            source = self.teacher_source(student, data, train, config)
            self.trainer_class = partial(self.trainer_class, teacher_source=source)
        return super().train(student, data, train, config, output_dir, resume=resume)


@dataclass
class KDPRADAConfig(KDConfig, PRADAConfig):
    """Knobs of ``method: kd_prada``: KD's and PRADA's together."""


@register_method("kd_prada")
class KDPRADA(KD, PRADA):
    """KD's token loss with PRADA's domain-adversarial term and soft prompts."""

    Config = KDPRADAConfig
    trainer_class = KDPRADATrainer
