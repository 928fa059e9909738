"""The ``lm_guided`` pipeline: LM-Guided CoT end to end (``pipeline: lm_guided`` in a recipe).

The KD + GRPO stages are the ``lm_guided`` method's (``cotdistill.methods.lm_guided``); this
module composes them under the stage rule of ``pipelines.stages`` and writes the run with
``pipelines.outputs``. Its recipe is the method's config (``reasoner``, ``sft``, ``rl``,
``rewards``) plus the data, the KD teacher, the student, KD training and evaluation:

1. ``data/``: train and test questions of a multi-hop task (``multihop`` or a ``hotpot`` file);
2. ``kd/rationales/``: teacher rationales over context + question (oracle = the gold ones), kept
   when correct; ``kd/student/``: the rationale model fine-tuned on them (``sft`` method);
3. ``rl/``: GRPO from the KD model with rewards computed through the frozen reasoner
   (``reward_log.jsonl`` per step and component); ``rl/student/``: the RL rationale model;
4. ``report.json`` / ``report.md`` / ``accuracy.png``: EM and F1 per question type (95%
   bootstrap intervals) for the reasoner alone, with its own CoT, with KD, RL and gold
   rationales, each greedy and with self-consistency; the paired RL-minus-KD difference question
   by question; and ``rewards.png``, one curve per GRPO reward component (plus KL and the
   weighted total). In ``report.json`` each condition is also a run (EM strict, F1 flexible),
   so ``cotdistill report`` puts it next to other pipelines' runs; ``timings.json``: the wall
   seconds of each stage, summed over resumed processes (the report shows them).

Each stage records its inputs (``stage.json``); a resumed run whose KD or RL inputs changed
(``rl``, ``rewards``, the reasoner, ...) stops with an error instead of reporting the new
settings next to the old model; changed data are drawn again.

The reasoner is any teacher backend (``hf`` on a pulled preset or directory, ``openai`` for a
llama.cpp / vLLM server); all its calls are batched and cached in ``reasoner_cache.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.config import to_dict
from cotdistill.console import format_table
from cotdistill.distill.generate import GenerateConfig
from cotdistill.errors import ConfigError
from cotdistill.io import read_records, write_jsonl
from cotdistill.methods.base import TrainConfig
from cotdistill.methods.lm_guided import (
    LMGuidedConfig,
    LMGuidedEvalConfig,
    distill,
    evaluate_rationale_models,
    guided_example,
    open_reasoner,
    paired_table,
    reinforce,
    resolve_reasoner,
    table,
    teacher_rationales,
)
from cotdistill.models import Student, StudentConfig, load_student
from cotdistill.models.student import STUDENT_FILE
from cotdistill.pipelines.base import register_pipeline
from cotdistill.pipelines.outputs import CHART_PNG, run_report, write_config, write_report
from cotdistill.pipelines.stages import OnChange, Stage, prepare, starting_afresh
from cotdistill.pipelines.timing import TIMINGS_JSON, StageTimes
from cotdistill.report.plot import plot_curves
from cotdistill.report.render import timings_section
from cotdistill.report.runs import condition_runs
from cotdistill.report.table import markdown_table
from cotdistill.tasks import Example, get_task
from cotdistill.teachers import TeacherConfig

log = logging.getLogger(__name__)
TITLE = "LM-guided CoT"


@dataclass
class LMGuidedDataConfig:
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


def _oracle_generate() -> GenerateConfig:
    return GenerateConfig(teacher=TeacherConfig(backend="oracle"), num_shots=0)


def _kd_train() -> TrainConfig:
    return TrainConfig(epochs=20.0, lr=3e-3, batch_size=16, logging_steps=10)


@dataclass
class LMGuidedPipelineConfig(LMGuidedConfig):
    """The method's sections (``reasoner``, ``sft``, ``rl``, ``rewards``) plus data, KD and evaluation."""

    seed: int = field(default=0, metadata={"help": "seed of the data and of training"})
    data: LMGuidedDataConfig = field(default_factory=LMGuidedDataConfig, metadata={"help": "the multi-hop questions"})
    generate: GenerateConfig = field(
        default_factory=_oracle_generate, metadata={"help": "KD teacher rationales (oracle: the gold rationales)"}
    )
    student: StudentConfig = field(default_factory=StudentConfig, metadata={"help": "the rationale model"})
    kd: TrainConfig = field(default_factory=_kd_train, metadata={"help": "stage 1 (SFT on teacher rationales)"})
    eval: LMGuidedEvalConfig = field(default_factory=LMGuidedEvalConfig, metadata={"help": "the final table"})


@register_pipeline("lm_guided")
class LMGuidedPipeline:
    """Runs an ``LMGuidedPipelineConfig``; see the module docstring for the stages and files."""

    Config = LMGuidedPipelineConfig

    def run(self, config: LMGuidedPipelineConfig, output_dir: Path, *, resume: bool = False) -> Path:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        reasoner_cfg = resolve_reasoner(config.reasoner.teacher)
        declared = stages(config, out, reasoner_cfg)
        times = StageTimes(out / TIMINGS_JSON, restart=[*starting_afresh(declared), "evaluation"])
        prepare(declared.values(), resume=resume)
        write_config(config, out)
        task = get_task(config.data.task, config.data.params)
        train, test = _data(config, task, out / "data")

        kd_dir = out / "kd"
        kd_student = _saved(kd_dir / "student")
        if kd_student is None:
            log.info("stage 1: KD rationales and SFT of the rationale model (%d questions)", len(train))
            with times.measure("kd rationales"):
                kept = teacher_rationales(config.generate, train, task, kd_dir / "rationales")
            with times.measure("kd"):
                corpus = [guided_example(e).question + " " + (e.rationale or "") for e in kept]
                student = load_student(config.student, corpus=corpus)
                kd_student = distill(student, kept, config.kd, config.sft, kd_dir / "train", resume=resume)
                kd_student.save(kd_dir / "student")

        reasoner = open_reasoner(config.reasoner, out / "reasoner_cache.jsonl", reasoner_cfg)
        try:
            rl_dir = out / "rl"
            rl_student = _saved(rl_dir / "student")
            if rl_student is None:
                log.info("stage 2: GRPO of the rationale model against the reasoner (%d steps)", config.rl.max_steps)
                rl_cfg = dataclasses.replace(config.rl, seed=config.seed)
                with times.measure("rl"):
                    rl_student = reinforce(
                        Student.load(kd_dir / "student"), train, reasoner, config.rewards, rl_cfg, rl_dir, resume=resume
                    )
                    rl_student.save(rl_dir / "student")
            log.info("evaluation: %d test questions, self-consistency k=%d", len(test), config.eval.k)
            models = {"KD": kd_student, "RL": rl_student}
            with times.measure("evaluation"):
                result = evaluate_rationale_models(test, reasoner, models, config.eval, seed=config.seed)
        finally:
            reasoner.close()
        result["reasoner"] = {"backend": reasoner_cfg.backend, "model": reasoner_cfg.model, "cache": reasoner.stats}
        result["timings_s"] = dict(times.seconds)
        return _report(result, config, out)


def stages(config: LMGuidedPipelineConfig, out: Path, reasoner: TeacherConfig) -> dict[str, Stage]:
    """The run's stages by name, in order: data, KD rationales, KD training, RL (the evaluation is
    redone every run)."""
    data = Stage.directory(out / "data", {"seed": config.seed, "data": config.data}, on_change=OnChange.RERUN)
    rationales = Stage.directory(out / "kd" / "rationales", data.after(generate=config.generate))
    kd = Stage.directory(
        out / "kd",
        rationales.after(student=config.student, kd=config.kd, sft=config.sft),
        outputs=[out / "kd" / "train", out / "kd" / "student"],
    )
    rl_inputs = kd.after(
        rl=dataclasses.replace(config.rl, seed=config.seed),
        rewards=config.rewards,
        reasoner={"teacher": reasoner, "prompt": config.reasoner.prompt},
    )
    return {"data": data, "kd rationales": rationales, "kd": kd, "rl": Stage.directory(out / "rl", rl_inputs)}


def _saved(directory: Path) -> Student | None:
    """A completed stage's student (saved last, so its presence marks completion)."""
    return Student.load(directory) if (directory / STUDENT_FILE).exists() else None


def _data(config: LMGuidedPipelineConfig, task: Any, directory: Path) -> tuple[list[Example], list[Example]]:
    """Train/test examples, written once to ``directory`` (its stage record matches) and read back."""
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
    runs = condition_runs(result["rows"], config.data.task, config.seed)
    report = run_report(
        {"metric": "strict", "config": to_dict(config), "runs": runs, **result}, pipeline="lm_guided", title=TITLE
    )
    lines = [
        f"# {TITLE}",
        "",
        f"Reasoner: `{result['reasoner']['model']}` ({result['reasoner']['backend']}), frozen. "
        f"Rationale model: `{config.student.model}`. Test questions: {config.data.n_test} ({config.data.task}).",
        f"EM and F1 in percent [95% bootstrap interval over the questions]; SC = self-consistency over "
        f"k={config.eval.k} samples with a majority vote.",
        "",
        markdown_table(headers, body),
        "",
        f"![EM per condition]({CHART_PNG})",
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
    lines += timings_section(result["timings_s"])
    files = write_report(output_dir, report, "\n".join(lines))
    print(format_table(headers, body))
    print(f"\nreport: {files['report']} (and report.json)")
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
