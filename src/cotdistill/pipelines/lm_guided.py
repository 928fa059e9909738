"""The ``lm_guided`` pipeline: LM-Guided CoT end to end (``pipeline: lm_guided`` in a recipe).

Stages, each writing into the run directory and reused when already complete:

1. ``data/``: train and test questions of a multi-hop task (``multihop`` or a ``hotpot`` file);
2. ``kd/rationales/``: teacher rationales over context + question (oracle = the gold ones), kept
   when correct; ``kd/student/``: the rationale model fine-tuned on them (``sft`` method);
3. ``rl/``: GRPO from the KD model with rewards computed through the frozen reasoner
   (``reward_log.jsonl`` per step and component); ``rl/student/``: the RL rationale model;
4. ``report.json`` / ``report.md``: EM and F1 per question type (95% bootstrap intervals) for the
   reasoner alone, with its own CoT, with KD, RL and gold rationales, each greedy and with
   self-consistency; the paired RL-minus-KD difference question by question; and
   ``rewards.png``, one curve per GRPO reward component (plus KL and the weighted total).

``rl/settings.json`` records what the RL stage was trained with (``rl``, ``rewards``, the
reasoner); a resumed run whose settings differ stops with an error instead of reporting the new
settings next to the old model.

The reasoner is any teacher backend (``hf`` on a pulled preset or directory, ``openai`` for a
llama.cpp / vLLM server); all its calls are batched and cached in ``reasoner_cache.jsonl``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.config import redact, save_config, to_dict
from cotdistill.console import format_table
from cotdistill.distill.generate import GenerateConfig
from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.io import atomic_write_json, atomic_write_text, read_records, write_jsonl
from cotdistill.methods.base import TrainConfig
from cotdistill.methods.lm_guided.data import RATIONALE_INSTRUCTION, guided_example, query, rationale_prompt, rl_rows
from cotdistill.methods.lm_guided.inference import (
    Condition,
    evaluate,
    fixed_writer,
    markdown_table,
    paired_table,
    student_writer,
    table,
)
from cotdistill.methods.lm_guided.kd import distill, teacher_rationales
from cotdistill.methods.lm_guided.reasoner import Reasoner, ReasonerConfig, default_reasoner, resolve_reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rl import RLConfig, train_grpo
from cotdistill.methods.sft import SFTMethodConfig
from cotdistill.models import Student, StudentConfig, load_student
from cotdistill.models.student import STUDENT_FILE
from cotdistill.pipelines.base import register_pipeline
from cotdistill.report.plot import plot_curves
from cotdistill.tasks import Example, get_task
from cotdistill.teachers import TeacherConfig, build_teacher

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Which multi-hop questions to use."""

    task: str = field(
        default="multihop", metadata={"help": "a multi-hop task: multihop (procedural) or hotpot (a file)"}
    )
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "the task's params (e.g. path for hotpot)"})
    n_train: int = field(default=64, metadata={"help": "training questions (KD and RL)"})
    n_test: int = field(default=24, metadata={"help": "test questions for the table"})

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_test < 1:
            raise ValueError(f"n_train and n_test must be >= 1, got {self.n_train}, {self.n_test}")


@dataclass
class ReasonerSection:
    """The frozen reasoner: a teacher backend plus its prompt settings."""

    teacher: TeacherConfig = field(
        default_factory=default_reasoner,
        metadata={"help": "backend of the reasoner; hf `model` may name a pulled preset (smollm2-135m-instruct)"},
    )
    prompt: ReasonerConfig = field(default_factory=ReasonerConfig, metadata={"help": "prompt and decoding settings"})


@dataclass
class EvalSection:
    k: int = field(default=5, metadata={"help": "samples for self-consistency (majority vote)"})
    max_rationale_tokens: int = field(default=64, metadata={"help": "tokens per rationale at inference"})
    own_cot: bool = field(default=True, metadata={"help": "include the reasoner-with-its-own-CoT rows"})
    gold: bool = field(
        default=True, metadata={"help": "include the reasoner-with-gold-rationales rows (when test examples have them)"}
    )

    def __post_init__(self) -> None:
        if self.k < 2 or self.max_rationale_tokens < 1:
            raise ValueError(f"need k >= 2 and max_rationale_tokens >= 1, got {self.k}, {self.max_rationale_tokens}")


def _oracle_generate() -> GenerateConfig:
    return GenerateConfig(teacher=TeacherConfig(backend="oracle"), num_shots=0)


def _kd_train() -> TrainConfig:
    return TrainConfig(epochs=20.0, lr=3e-3, batch_size=16, logging_steps=10)


@dataclass
class LMGuidedPipelineConfig:
    seed: int = field(default=0, metadata={"help": "seed of the data and of training"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "the multi-hop questions"})
    generate: GenerateConfig = field(
        default_factory=_oracle_generate, metadata={"help": "KD teacher rationales (oracle: the gold rationales)"}
    )
    reasoner: ReasonerSection = field(default_factory=ReasonerSection, metadata={"help": "the frozen reasoner"})
    student: StudentConfig = field(default_factory=StudentConfig, metadata={"help": "the rationale model"})
    kd: TrainConfig = field(default_factory=_kd_train, metadata={"help": "stage 1 (SFT on teacher rationales)"})
    sft: SFTMethodConfig = field(
        default_factory=SFTMethodConfig, metadata={"help": "options of the sft method used for KD"}
    )
    rl: RLConfig = field(default_factory=RLConfig, metadata={"help": "stage 2 (GRPO)"})
    rewards: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "reward weights"})
    eval: EvalSection = field(default_factory=EvalSection, metadata={"help": "the final table"})


@register_pipeline("lm_guided")
class LMGuidedPipeline:
    Config = LMGuidedPipelineConfig

    def run(self, config: LMGuidedPipelineConfig, output_dir: Path, *, resume: bool = False) -> Path:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / "config.yaml")
        reasoner_cfg = resolve_reasoner(config.reasoner.teacher)
        task = get_task(config.data.task, config.data.params)
        train, test = _data(config, task, output_dir / "data")

        kd_dir = output_dir / "kd"
        kd_student = _stage(kd_dir / "student")
        if kd_student is None:
            log.info("stage 1: KD rationales and SFT of the rationale model (%d questions)", len(train))
            kept = teacher_rationales(config.generate, train, task, kd_dir / "rationales")
            corpus = [guided_example(e).question + " " + (e.rationale or "") for e in kept]
            student = load_student(config.student, corpus=corpus)
            kd_student = distill(student, kept, config.kd, config.sft, kd_dir / "train", resume=resume)
            kd_student.save(kd_dir / "student")

        reasoner = Reasoner(build_teacher(reasoner_cfg), config.reasoner.prompt, output_dir / "reasoner_cache.jsonl")
        try:
            rl_dir = output_dir / "rl"
            _check_rl_settings(config, reasoner_cfg, rl_dir)
            rl_student = _stage(rl_dir / "student")
            if rl_student is None:
                log.info("stage 2: GRPO of the rationale model against the reasoner (%d steps)", config.rl.max_steps)
                rl_student = Student.load(kd_dir / "student")
                rewarder = Rewarder(reasoner, config.rewards)
                rows = rl_rows(train, functools.partial(rationale_prompt, rl_student))
                rl_cfg = dataclasses.replace(config.rl, seed=config.seed)
                rl_student.model = train_grpo(
                    rl_student.model, rl_student.tokenizer, rows, rewarder, rl_cfg, rl_dir, resume=resume
                )
                rl_student.save(rl_dir / "student")
            log.info("evaluation: %d test questions, self-consistency k=%d", len(test), config.eval.k)
            result = self._evaluate(config, test, reasoner, kd_student, rl_student)
        finally:
            reasoner.close()
        result["reasoner"] = {"backend": reasoner_cfg.backend, "model": reasoner_cfg.model, "cache": reasoner.stats}
        return _report(result, config, output_dir)

    def _evaluate(
        self, config: LMGuidedPipelineConfig, test: list[Example], reasoner: Reasoner, kd: Student, rl: Student
    ) -> dict[str, Any]:
        tokens = config.eval.max_rationale_tokens
        conditions = [Condition("reasoner alone")]
        if config.eval.own_cot:
            conditions.append(Condition("reasoner CoT", own_cot=True))
        conditions += [
            Condition("reasoner + KD rationales", student_writer(kd, RATIONALE_INSTRUCTION, tokens, seed=config.seed)),
            Condition("reasoner + RL rationales", student_writer(rl, RATIONALE_INSTRUCTION, tokens, seed=config.seed)),
        ]
        if config.eval.gold and all(e.rationale for e in test):
            conditions.append(Condition("reasoner + gold rationales", fixed_writer([e.rationale for e in test])))
        questions = [guided_example(e).question for e in test]
        paired = ("reasoner + RL rationales", "reasoner + KD rationales")
        queries = [query(e) for e in test]
        return evaluate(conditions, test, queries, questions, reasoner, config.eval.k, paired=paired, seed=config.seed)


def _check_rl_settings(config: LMGuidedPipelineConfig, reasoner: TeacherConfig, rl_dir: Path) -> None:
    """Write ``rl/settings.json`` for a new RL stage; refuse to reuse one trained with other settings."""
    parts = {"rl": to_dict(config.rl), "rewards": to_dict(config.rewards), "reasoner": to_dict(reasoner)}
    settings = json.loads(json.dumps(redact(parts)))
    settings["rl"]["seed"] = config.seed  # the stage trains with the run's seed
    path = rl_dir / "settings.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != settings:
            changed = sorted(
                f"{part}.{key}"
                for part in settings
                for key in set(settings[part]) | set(saved.get(part, {}))
                if settings[part].get(key) != saved.get(part, {}).get(key)
            )
            raise CotDistillError(
                f"{rl_dir} was trained with other settings ({', '.join(changed)}): remove {rl_dir} to retrain "
                "the RL stage, or run with the settings it was trained with"
            )
        return
    atomic_write_json(path, settings)


def _stage(directory: Path) -> Student | None:
    """A completed stage's student (saved last, so its presence marks completion)."""
    return Student.load(directory) if (directory / STUDENT_FILE).exists() else None


def _data(config: LMGuidedPipelineConfig, task: Any, directory: Path) -> tuple[list[Example], list[Example]]:
    """Train/test examples, written once to ``directory`` and read back on reruns."""
    splits = {}
    for split, n in (("train", config.data.n_train), ("test", config.data.n_test)):
        path = directory / f"{split}.jsonl"
        if not path.exists():
            examples = task.examples(split, n, config.seed)
            if not examples:
                raise ConfigError(f"task '{config.data.task}' has no '{split}' examples")
            write_jsonl(path, (e.to_dict() for e in examples))
        splits[split] = read_records(path, Example.from_dict)
    return splits["train"], splits["test"]


def _report(result: dict[str, Any], config: LMGuidedPipelineConfig, output_dir: Path) -> Path:
    headers, body = table(result["rows"])
    report = {"pipeline": "lm_guided", "config": to_dict(config), **result}
    atomic_write_json(output_dir / "report.json", report)
    lines = [
        "# LM-guided CoT",
        "",
        f"Reasoner: `{result['reasoner']['model']}` ({result['reasoner']['backend']}), frozen. "
        f"Rationale model: `{config.student.model}`. Test questions: {config.data.n_test} ({config.data.task}).",
        f"EM and F1 in percent [95% bootstrap interval over the questions]; SC = self-consistency over "
        f"k={config.eval.k} samples with a majority vote.",
        "",
        markdown_table(headers, body),
        "",
    ]
    if "paired" in result:
        paired_headers, paired_body = paired_table(result["paired"])
        lines += [
            "Paired difference, question by question (percentage points [95% bootstrap interval]):",
            "",
            markdown_table(paired_headers, paired_body),
            "",
        ]
    lines += _reward_section(output_dir / "rl" / "reward_log.jsonl", config.rewards.weights, output_dir)
    atomic_write_text(output_dir / "report.md", "\n".join(lines))
    print(format_table(headers, body))
    print(f"\nreport: {output_dir / 'report.md'} (and report.json)")
    return output_dir


REWARD_PLOT = "rewards.png"


def _reward_section(path: Path, weights: dict[str, float], output_dir: Path) -> list[str]:
    """The GRPO reward components per logged step (mean over the step's rationales), as a table and a PNG."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = [n for n, w in weights.items() if w != 0]
    curves = ["reward", *names, "kl", "frac_reward_zero_std", "completions/clipped_ratio"]
    plot_curves(rows, [k for k in curves if any(r.get(k) is not None for r in rows)], output_dir / REWARD_PLOT)
    headers = ["step", "reward (weighted)", "kl", "zero-std groups", *[f"{n} (w={weights[n]:g})" for n in names]]
    body = [[r["step"], *(_fmt(r.get(k)) for k in ("reward", "kl", "frac_reward_zero_std", *names))] for r in rows]
    return [
        f"GRPO reward components per step (`{path.name}` has every logged value):",
        "",
        f"![GRPO reward components]({REWARD_PLOT})",
        "",
        markdown_table(headers, body),
        "",
    ]


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"
