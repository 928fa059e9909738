"""The ``cot`` pipeline: distil CoT into a student with several methods and compare them.

Stages (each writes its files into the run directory and is skipped when already complete):

1. ``suite/``: the multi-domain suite (``tasks.suite.make_suite``; a no-op when up to date);
2. ``rationales/``: teacher rationales for the source domains' train questions
   (``distill.generate``; oracle by default), filtered and resumable;
3. ``runs/<variant>/seed-<s>/train/``: for every method variant and seed, a fresh student
   trained with the variant's method (``final/`` is the checkpoint; an interrupted training
   resumes from its last checkpoint);
4. ``runs/<variant>/seed-<s>/eval/``: evaluation on the test split of every domain;
5. ``report.json``, ``report.md``, ``accuracy.png``: the variants side by side, each seed pooled
   (mean and 95% interval for every domain, in-domain and out-of-domain), with chance baselines.

Stages follow the one rule of ``pipelines.stages``: each directory records what it was made from
(``stage.json``); resuming with a recipe that changed what the suite, the rationales or a training
depends on is refused instead of mixing results, a changed evaluation setting re-runs the
evaluations. The run's outputs are written by ``pipelines.outputs``.
Variants are a list in the recipe: adding a method to the comparison is one more entry
``{name, method, args, train}`` (``args``: the method's Config; ``train``: TrainConfig overrides).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cotdistill.config import from_dict, to_dict
from cotdistill.console import format_table
from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.recipe import suite_questions
from cotdistill.distill.store import load_kept
from cotdistill.errors import ConfigError, CotDistillError, UnknownNameError
from cotdistill.eval.evaluate import REPORT_JSON, EvalConfig, evaluate
from cotdistill.eval.summary import METRICS, paired_difference, summarize
from cotdistill.methods.base import METHODS, TrainConfig, TrainData
from cotdistill.models import Student, StudentConfig, load_student
from cotdistill.models.student import STUDENT_FILE
from cotdistill.pipelines.base import register_pipeline
from cotdistill.pipelines.outputs import CHART_PNG, run_report, write_config, write_report
from cotdistill.pipelines.stages import OnChange, Stage, prepare
from cotdistill.report.render import paired_verdicts, render_comparison, write_eval_markdown
from cotdistill.report.runs import runs_of
from cotdistill.report.table import comparison_rows
from cotdistill.tasks.suite import Role, Suite, SuiteConfig, load_suite, make_suite

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class VariantConfig:
    """One method in the comparison: a name, a registered method, its args and train overrides."""

    name: str = field(default="", metadata={"help": "label in the report (letters, digits, '_', '-', '.')"})
    method: str = field(default="sft", metadata={"help": "registered method (sft, prada, ...)"})
    args: dict[str, Any] = field(default_factory=dict, metadata={"help": "the method's Config fields"})
    train: dict[str, Any] = field(default_factory=dict, metadata={"help": "overrides of the shared train settings"})
    seeds: list[int] = field(
        default_factory=list,
        metadata={"help": "this variant's training seeds (empty: the run's seeds); fewer for a costly variant"},
    )

    def __post_init__(self) -> None:
        self.name = self.name or self.method
        if not _NAME.match(self.name):
            raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {self.name!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct integers, got {self.seeds}")
        try:
            method = METHODS.get(self.method)
            from_dict(method.Config, self.args, where=f"method '{self.method}'", prefix="args.")
            from_dict(TrainConfig, self.train, where=f"variant '{self.name}'", prefix="train.")
        except (ConfigError, UnknownNameError) as exc:
            raise ValueError(str(exc)) from None

    def method_config(self) -> Any:
        return from_dict(METHODS.get(self.method).Config, self.args)

    def identity(self) -> dict[str, Any]:
        """What a training of this variant depends on: everything but the seed list (a run's own seed
        is in its train settings), so that adding or dropping seeds keeps the finished trainings."""
        return {k: v for k, v in to_dict(self).items() if k != "seeds"}

    def train_config(self, base: TrainConfig, seed: int) -> TrainConfig:
        """The shared settings with this variant's overrides; trackers see ``[run_name/]variant/seed-N``."""
        merged = {**to_dict(base), **self.train, "seed": seed}
        merged["run_name"] = "/".join(p for p in (merged["run_name"], self.name, f"seed-{seed}") if p)
        return from_dict(TrainConfig, merged)


@dataclass
class CotConfig:
    """The ``cot`` pipeline: suite -> teacher rationales -> (variant x seed) students -> comparison."""

    suite: SuiteConfig = field(metadata={"help": "domains (source / target_near / target_far) and sizes"})
    title: str = field(default="CoT distillation: methods compared", metadata={"help": "report title"})
    generate: GenerateConfig = field(
        default_factory=GenerateConfig, metadata={"help": "teacher backend, sampling and filtering of rationales"}
    )
    student: StudentConfig = field(default_factory=StudentConfig, metadata={"help": "the student model"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "training settings shared by variants"})
    variants: list[VariantConfig] = field(
        default_factory=lambda: [VariantConfig(name="sft", method="sft")],
        metadata={"help": "methods to compare: [{name, method, args, train}]"},
    )
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "training seeds per variant"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "evaluation settings"})
    jobs: int = field(
        default=1,
        metadata={
            "help": "(variant, seed) trainings run at once in separate processes, each with "
            "cores/jobs torch threads; 0 = one per CPU core. Tiny CPU students train faster as "
            "several one-thread processes; keep 1 for GPU or accelerate runs"
        },
    )

    def __post_init__(self) -> None:
        if self.jobs < 0:
            raise ValueError(f"jobs must be >= 0 (0 = one per CPU core), got {self.jobs}")
        names = [v.name for v in self.variants]
        if not names:
            raise ValueError("variants must list at least one method")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variant names must be unique; repeated: {repeated}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}")
        if not any(d.role == Role.SOURCE for d in self.suite.domains):
            raise ValueError("the suite needs at least one source domain (labelled training data)")


@register_pipeline("cot")
class CotPipeline:
    """Runs a ``CotConfig``; see the module docstring for the stages and files."""

    Config = CotConfig

    def run(self, config: CotConfig, output_dir: str | Path, *, resume: bool = False) -> Path:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        runs = [(variant, seed) for variant in config.variants for seed in variant.seeds or config.seeds]
        prepare(stages(config, out, runs), resume=resume)
        write_config(config, out)
        timings: dict[str, float] = {}

        started = time.perf_counter()
        suite = load_suite(make_suite(config.suite, out / "suite"))
        timings["suite"] = time.perf_counter() - started

        started = time.perf_counter()
        data = self._training_data(config, suite, out / "rationales")
        timings["rationales"] = time.perf_counter() - started

        evaluations: dict[str, dict[int, dict[str, Any]]] = {}
        for name, seed, report, seconds in self._run_all(config, runs, data, out, resume=resume):
            evaluations.setdefault(name, {})[seed] = report
            timings[f"train {name} seed {seed}"], timings[f"eval {name} seed {seed}"] = seconds

        report = comparison_report(config, evaluations, timings)
        files = write_report(out, report, render_comparison(report, chart=CHART_PNG))
        headers, rows = comparison_rows(runs_of(report, ""))
        print(format_table(headers, [[cell.replace("**", "") for cell in row] for row in rows]))
        verdicts = paired_verdicts(report)
        if verdicts:
            print("\npaired differences (95% intervals over seeds and examples):")
            print("\n".join(f"- {sentence}" for sentence in verdicts))
        print(f"\nreport: {files['report']}\nchart:  {files['chart']}\ndata:   {files['data']}")
        return out

    # ------------------------------------------------------------------ stages

    def _run_all(
        self, config: CotConfig, runs: list[tuple[VariantConfig, int]], data: TrainData, out: Path, *, resume: bool
    ) -> list[tuple[str, int, dict[str, Any], tuple[float, float]]]:
        """Train and evaluate every (variant, seed), in ``config.jobs`` processes when > 1."""
        cores = os.cpu_count() or 1
        workers = min(config.jobs or cores, len(runs))
        if workers <= 1:
            return [_train_and_evaluate(config, variant, seed, data, out, resume) for variant, seed in runs]
        threads = max(1, cores // workers)
        log.info("running %d trainings in %d processes (%d torch thread(s) each)", len(runs), workers, threads)
        context = get_context("spawn")
        level = logging.getLogger().level
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(threads, level)
        ) as pool:
            futures = [pool.submit(_train_and_evaluate, config, v, s, data, out, resume) for v, s in runs]
            return [future.result() for future in futures]

    def _training_data(self, config: CotConfig, suite: Suite, directory: Path) -> TrainData:
        """Teacher rationales for the source train questions; target train questions unlabelled."""
        questions, tasks = suite_questions(suite, "train")
        if not questions:
            raise ConfigError("the suite's source domains have no train questions (set n_train > 0)")
        generate_rationales(config.generate, questions, directory, tasks=tasks)
        return training_data(suite, directory)

    def _train(
        self, config: CotConfig, variant: VariantConfig, seed: int, data: TrainData, run_dir: Path, *, resume: bool
    ) -> Path:
        """Train a fresh student for ``variant`` at ``seed``; returns its checkpoint directory."""
        train_dir = run_dir / "train"
        train_cfg = variant.train_config(config.train, seed)
        checkpoint = train_dir / "final"
        if (checkpoint / STUDENT_FILE).exists():
            log.info("%s: already trained", checkpoint)
            return checkpoint
        torch.manual_seed(seed)
        student_cfg = dataclasses.replace(config.student, tiny=dataclasses.replace(config.student.tiny, seed=seed))
        student = load_student(student_cfg, corpus=training_corpus(data))
        method = METHODS.get(variant.method)()
        log.info("training variant '%s' (method %s), seed %d", variant.name, variant.method, seed)
        trained = method.train(student, data, train_cfg, variant.method_config(), train_dir, resume=resume)
        if not (checkpoint / STUDENT_FILE).exists():
            trained.save(checkpoint)
        return checkpoint

    def _evaluate(self, config: CotConfig, suite: Suite, checkpoint: Path, eval_dir: Path) -> dict[str, Any]:
        """Evaluate a checkpoint on every domain (reusing a finished evaluation with the same settings)."""
        meta = {"checkpoint": str(checkpoint)}
        finished = eval_dir / REPORT_JSON
        if finished.exists():
            report = json.loads(finished.read_text(encoding="utf-8"))
            if report.get("config") == to_dict(config.eval) and report.get("meta") == meta:
                return report
        domains = suite.domains()
        report = evaluate(
            Student.load(checkpoint),
            {d: suite.examples(d, config.eval.split) for d in domains},
            suite.roles,
            config.eval,
            eval_dir,
            tasks={d: suite.task(d) for d in domains},
            meta=meta,
        )
        write_eval_markdown(report, eval_dir)
        return report


def stages(config: CotConfig, out: Path, runs: list[tuple[VariantConfig, int]]) -> list[Stage]:
    """The run's stages in order: suite, rationales, then a training and an evaluation per (variant, seed)."""
    suite = Stage.directory(out / "suite", {"suite": config.suite})
    rationales = Stage.directory(out / "rationales", suite.after(generate=config.generate))
    declared = [suite, rationales]
    for variant, seed in runs:
        run_dir = out / "runs" / variant.name / f"seed-{seed}"
        train_cfg = variant.train_config(config.train, seed)
        train = Stage.directory(
            run_dir / "train", rationales.after(student=config.student, train=train_cfg, variant=variant.identity())
        )
        evaluation = Stage.directory(run_dir / "eval", train.after(eval=config.eval), on_change=OnChange.RERUN)
        declared += [train, evaluation]
    return declared


def _init_worker(threads: int, log_level: int) -> None:
    torch.set_num_threads(threads)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _train_and_evaluate(
    config: CotConfig, variant: VariantConfig, seed: int, data: TrainData, out: Path, resume: bool
) -> tuple[str, int, dict[str, Any], tuple[float, float]]:
    """One (variant, seed): train a fresh student, evaluate it; returns the report and timings."""
    pipeline = CotPipeline()
    run_dir = out / "runs" / variant.name / f"seed-{seed}"
    started = time.perf_counter()
    checkpoint = pipeline._train(config, variant, seed, data, run_dir, resume=resume)
    trained = time.perf_counter()
    report = pipeline._evaluate(config, load_suite(out / "suite"), checkpoint, run_dir / "eval")
    return variant.name, seed, report, (trained - started, time.perf_counter() - trained)


def comparison_report(
    config: CotConfig, evaluations: dict[str, dict[int, dict[str, Any]]], timings: dict[str, float]
) -> dict[str, Any]:
    """Pool each variant's seeds into one summary (seed x example bootstrap) for ``report.json``, and
    each later variant's difference from the first one (``paired``), paired over the seeds both ran
    (``seeds``) and their examples."""
    runs: dict[str, Any] = {}
    chance: dict[str, float] = {}
    kwargs = {
        "n_resamples": config.eval.bootstrap_resamples,
        "confidence": config.eval.confidence,
        "seed": config.eval.seed,
    }
    for variant in config.variants:
        per_seed = evaluations[variant.name]
        first = next(iter(per_seed.values()))
        domains = first["summary"]["domains"]
        roles = {d: entry["role"] for d, entry in domains.items()}
        chance = {d: entry["chance"] for d, entry in domains.items()}
        correct = _scores(per_seed, sorted(per_seed), domains)
        runs[variant.name] = {
            "method": variant.method,
            "seeds": sorted(per_seed),
            "summary": summarize(correct, roles, chance, **kwargs),
            "per_seed": {
                str(seed): {
                    group: {m: entry[m]["mean"] for m in METRICS}
                    for group, entry in report["summary"]["groups"].items()
                }
                for seed, report in per_seed.items()
            },
        }
    baseline = config.variants[0].name
    paired = {}
    for variant in config.variants[1:]:
        shared = sorted(set(evaluations[variant.name]) & set(evaluations[baseline]))
        if shared:
            before, after = (_scores(evaluations[name], shared, roles) for name in (baseline, variant.name))
            paired[variant.name] = {
                "baseline": baseline,
                "seeds": shared,
                "difference": paired_difference(before, after, roles, **kwargs),
            }
    body = {
        "metric": config.eval.metric,
        "config": to_dict(config),
        "chance": chance,
        "runs": runs,
        "paired": paired,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    return run_report(body, pipeline="cot", title=config.title)


def _scores(
    per_seed: dict[int, dict[str, Any]], seeds: list[int], domains: Iterable[str]
) -> dict[str, dict[str, np.ndarray]]:
    """Per metric and domain, the (len(seeds), examples) matrix of those seeds' per-example scores."""
    return {
        metric: {
            d: np.array([[float(row[metric]) for row in per_seed[seed]["examples"][d]] for seed in seeds])
            for d in domains
        }
        for metric in METRICS
    }


def training_data(suite: Suite, rationales_dir: str | Path) -> TrainData:
    """Kept teacher rationales as labelled data; the suite's target train questions as unlabelled
    ones (answers and rationales dropped); every domain's answer instruction and task family.
    A source domain without a single kept rationale is refused (it could be neither trained nor
    scored in-domain)."""
    directory = Path(rationales_dir)
    labelled = load_kept(directory)
    if not labelled:
        raise CotDistillError(f"the teacher kept no rationale (see {directory / 'stats.json'})")
    kept = {e.domain for e in labelled}
    empty = [d for d in suite.domains(Role.SOURCE) if d not in kept]
    if empty:
        raise CotDistillError(
            f"source domain(s) {', '.join(empty)}: the teacher kept no rationale for any question, so they "
            f"cannot be trained or scored in-domain (see {directory / 'stats.json'}); fix the teacher "
            "or give those domains another role"
        )
    targets = [d for d in suite.domains() if suite.roles[d] != Role.SOURCE]
    unlabelled = [
        dataclasses.replace(e, answer="", rationale=None) for d in targets for e in suite.examples(d, "train")
    ]
    instructions = {d: suite.task(d).answer_instruction for d in suite.domains()}
    families = {d: str(suite.task(d).family) for d in suite.domains()}
    return TrainData(labelled=labelled, unlabelled=unlabelled, instructions=instructions, families=families)


def training_corpus(data: TrainData) -> list[str]:
    """Texts a from-scratch tokenizer is trained on: training questions, rationales, instructions."""
    texts = [e.question for e in data.labelled] + [e.rationale or "" for e in data.labelled]
    texts += [e.question for e in data.unlabelled]
    return texts + list(data.instructions.values())
