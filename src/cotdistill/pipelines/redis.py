"""The ``redis`` pipeline: ReDis reasoning distillation on rule-induction tasks (``pipeline: redis``).

ReDis is a pipeline-only multi-stage workflow, not a registered method: it trains and compares
several students on rule tasks, so it cannot be one ``method.train`` call on ``TrainData``. Its
stages live in ``cotdistill.methods.redis``; this module only composes them, under the stage
rule of ``pipelines.stages`` (records in ``stages/``; ``--resume`` refuses a changed teacher
stage or training and re-runs a changed evaluation) and writes the run with ``pipelines.outputs``:

1. ``data/<domain>/{train,test}.jsonl``: tasks (generated, or read from ReDis-format files),
   split 90/10 per domain with the run's seed, or with ``data.test_files`` a file as the whole
   test set (the domain's other tasks all train);
2. ``augment/``: teacher rule proposals and rule-following scores (``rules.jsonl``,
   ``applications.jsonl``); the ``oracle`` backend uses the generators' known rules;
3. ``stage2/``: preference pairs and the two SFT sets (``pairs.jsonl``, ``sft.jsonl``,
   ``stats.json``), rebuilt from ``augment/`` on every run;
4. ``students/{io_sft,redis_sft,redis_orpo,redis_dpo}``: the IO-SFT baseline, the student after
   rule SFT, and after rule SFT + ORPO / + DPO (both aligned from the same SFT student);
5. ``eval/<condition>.jsonl`` (direct answering, greedy) or ``eval/<condition>.seed<S>.jsonl``
   (one hypothesis search per ``search.seeds`` entry) + ``report.json`` / ``report.md`` /
   ``accuracy.png``: exact-match accuracy on the unseen queries of the test tasks, per domain
   with 95% bootstrap intervals over (seeds, queries), next to each domain's majority-answer
   baseline, for ReDis and the baselines ``direct`` (few-shot answers from the base student),
   ``hs_base`` (hypothesis search with the base student) and ``io_sft`` (the student fine-tuned
   on input -> output, answering directly).

``timings.json`` holds the wall seconds of each stage, summed over resumed processes; the report
shows them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.io import atomic_write_json, read_records, write_jsonl
from cotdistill.methods.redis import (
    AlignLoss,
    RuleOracle,
    Stage2,
    TaskResult,
    align,
    augment,
    build,
    direct_answers,
    hypothesis_search,
    io_items,
    sft,
    tokenizer_corpus,
)
from cotdistill.models import Student, load_student
from cotdistill.models.student import STUDENT_FILE
from cotdistill.pipelines.base import register_pipeline
from cotdistill.pipelines.outputs import write_config, write_report
from cotdistill.pipelines.redis_config import REDIS_CONDITIONS, ReDisConfig
from cotdistill.pipelines.redis_report import build_report, stage2_summary
from cotdistill.pipelines.stages import OnChange, Stage, prepare, starting_afresh
from cotdistill.pipelines.timing import TIMINGS_JSON, StageTimes
from cotdistill.tasks import TASKS
from cotdistill.tasks.inductive import (
    GeneratedTask,
    RuleTask,
    load_rule_tasks,
    sample_tasks,
    task_to_dict,
    write_rule_tasks,
)
from cotdistill.teachers import build_teacher

log = logging.getLogger(__name__)

ALIGNED: dict[str, AlignLoss] = {"redis_orpo": "orpo", "redis_dpo": "dpo"}
TRAIN_DIRS = {"io_sft": "io_sft", "redis_sft": "sft", "redis_orpo": "orpo", "redis_dpo": "dpo"}
SEARCHED = ("hs_base", "redis_sft", *ALIGNED)


@register_pipeline("redis")
class ReDisPipeline:
    """ReDis end to end; see the module docstring for the stages and files."""

    Config = ReDisConfig

    def run(self, config: ReDisConfig, output_dir: Path, *, resume: bool = False) -> Path:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        parts = split_tasks(config)
        declared = stages(config, out, tasks_digest(parts))
        times = StageTimes(out / TIMINGS_JSON, restart=starting_afresh(declared))
        prepare(declared.values(), resume=resume)
        write_config(config, out)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        train, test = _write_split(parts, out / "data")
        log.info("redis: %d training tasks, %d test tasks", len(train), len(test))
        with times.measure("augment"):
            records = augment(train, _teacher(config, train), config.augment, out / "augment", resume=True)
        stage2 = build(records, {t.idx: t for t in train}, config.filter)
        _write_stage2(stage2, out / "stage2")
        _require_rules(stage2, config.methods, out)
        corpus = tokenizer_corpus(train, test, stage2)
        lora = _lora(config)

        def fresh() -> Student:
            return load_student(config.student, corpus)

        def redis_sft() -> Student:
            return sft(
                fresh(),
                stage2.rule_generation + stage2.rule_following,
                config.train,
                out / "train" / "sft",
                lora,
                resume=True,
            )

        trainers: dict[str, Callable[[], Student]] = {
            "io_sft": lambda: sft(
                fresh(),
                io_items(train, config.io_max_per_task, config.seed),
                config.train,
                out / "train" / "io_sft",
                lora,
                resume=True,
            ),
            "redis_sft": redis_sft,
            **{
                name: lambda loss=loss: align(
                    _trained(out, "redis_sft", redis_sft),
                    stage2.pairs,
                    config.train,
                    out / "train" / loss,
                    lora,
                    loss,
                    resume=True,
                )
                for name, loss in ALIGNED.items()
            },
        }
        base = fresh()
        results: dict[str, list[list[TaskResult]]] = {}
        for name in REDIS_CONDITIONS:
            if name not in config.methods:
                continue
            student = base
            if name not in ("direct", "hs_base"):
                with times.measure(name):
                    student = _trained(out, name, trainers[name])
            with times.measure(f"eval {name}"):
                results[name] = _evaluate(student, test, config, _eval_files(out, name, config), name in SEARCHED)
        report, markdown, table = build_report(results, test, stage2, config, times.seconds)
        files = write_report(out, report, markdown)
        print(table)
        print(f"\nreport: {files['report']} (and report.json)")
        return out


def stages(config: ReDisConfig, out: Path, digest: str) -> dict[str, Stage]:
    """Every stage of the run, by name, in order (see the module docstring)."""
    records = out / "stages"
    teacher: dict[str, Any] = {"teacher": config.teacher}
    if config.rule_oracle:
        teacher["oracle"] = config.oracle
    tasks = {"seed": config.seed, "data": config.data, "tasks_sha256": digest}
    declared = {"augment": Stage.directory(out / "augment", {**tasks, **teacher, "augment": config.augment})}
    corpus = declared["augment"].after(filter=config.filter, student=config.student)
    students = {
        "io_sft": {**corpus, "train": config.train, "io_max_per_task": config.io_max_per_task},
        "redis_sft": {**corpus, "train": config.train},
        **{name: {**corpus, "train": config.train, "loss": loss} for name, loss in ALIGNED.items()},
    }
    trained = set(config.methods) | ({"redis_sft"} if ALIGNED.keys() & set(config.methods) else set())
    for name in REDIS_CONDITIONS:
        student_inputs = students.get(name, corpus)
        if name in students and name in trained:
            outputs = [out / "students" / name, out / "train" / TRAIN_DIRS[name]]
            declared[name] = Stage.files(records, name, outputs, student_inputs, on_change=OnChange.REFUSE)
        if name in config.methods:
            inputs = {**student_inputs, "search": config.search}
            files = _eval_files(out, name, config)
            declared[f"eval {name}"] = Stage.files(records, f"eval-{name}", files, inputs, on_change=OnChange.RERUN)
    return declared


def _evaluate(
    student: Student, test: list[RuleTask], config: ReDisConfig, files: list[Path], search: bool
) -> list[list[TaskResult]]:
    """One result list per file: a hypothesis search per ``search.seeds`` entry, or direct answers."""
    if search:
        return [
            _cached_eval(path, lambda seed=seed: hypothesis_search(student, test, config.search, seed))
            for seed, path in zip(config.search.seeds, files)
        ]
    return [_cached_eval(files[0], lambda: direct_answers(student, test, config.search))]


def _eval_files(out: Path, name: str, config: ReDisConfig) -> list[Path]:
    if name in SEARCHED:
        return [out / "eval" / f"{name}.seed{seed}.jsonl" for seed in config.search.seeds]
    return [out / "eval" / f"{name}.jsonl"]


def split_tasks(config: ReDisConfig) -> dict[str, tuple[list[RuleTask], list[RuleTask]]]:
    """Per domain: (train, test), 90/10 with the run's seed, or every task for training and
    ``test_files`` for testing."""
    parts = {}
    for domain in config.data.domains:
        tasks = _tasks(config, domain)
        if domain in config.data.test_files:
            parts[domain] = (tasks, _file_tasks(config, config.data.test_files[domain], domain, f"{domain}-test"))
        else:
            parts[domain] = _hold_out(tasks, config, domain)
    return parts


def tasks_digest(parts: dict[str, tuple[list[RuleTask], list[RuleTask]]]) -> str:
    """sha256 of every task of the split, so an edited task file is a changed input."""
    data = {d: [[task_to_dict(t) for t in part] for part in pair] for d, pair in parts.items()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def make_split(config: ReDisConfig, data_dir: Path) -> tuple[list[RuleTask], list[RuleTask]]:
    """``split_tasks``, both parts written as ReDis-format JSONL (``data_dir/<domain>/{train,test}.jsonl``)."""
    return _write_split(split_tasks(config), data_dir)


def _write_split(
    parts: dict[str, tuple[list[RuleTask], list[RuleTask]]], data_dir: Path
) -> tuple[list[RuleTask], list[RuleTask]]:
    train: list[RuleTask] = []
    test: list[RuleTask] = []
    for domain, (domain_train, domain_test) in parts.items():
        write_rule_tasks(data_dir / domain / "train.jsonl", domain_train)
        write_rule_tasks(data_dir / domain / "test.jsonl", domain_test)
        train += domain_train
        test += domain_test
    return train, test


def _hold_out(tasks: list[RuleTask], config: ReDisConfig, domain: str) -> tuple[list[RuleTask], list[RuleTask]]:
    order = list(range(len(tasks)))
    random.Random(f"split:{config.seed}:{domain}").shuffle(order)
    n_test = max(1, round(config.data.test_fraction * len(tasks)))
    if n_test >= len(tasks):
        raise ConfigError(f"domain '{domain}' has {len(tasks)} task(s): too few to hold {n_test} out for testing")
    held = set(order[:n_test])
    return [t for i, t in enumerate(tasks) if i not in held], [t for i, t in enumerate(tasks) if i in held]


def _tasks(config: ReDisConfig, domain: str) -> list[RuleTask]:
    data = config.data
    if domain in data.files:
        return _file_tasks(config, data.files[domain], domain, domain)
    params = None
    if domain in TASKS and hasattr(TASKS.get(domain), "Params"):
        params = from_dict(TASKS.get(domain).Params, data.params.get(domain, {}), where=f"data.params.{domain}")
    return sample_tasks(
        domain,
        data.tasks_per_domain,
        config.seed,
        params,
        n_seen=data.n_seen.get(domain),
        n_test=data.n_test.get(domain),
    )


def _file_tasks(config: ReDisConfig, path: str, domain: str, prefix: str) -> list[RuleTask]:
    """Every task of a ReDis-format file, ids ``<prefix>-<idx>``."""
    counter: dict[str, int] = {}
    tasks = load_rule_tasks(path, domain, skip_invalid=config.data.skip_invalid, counter=counter)
    if counter.get("skipped"):
        log.warning("%s: skipped %d malformed line(s)", path, counter["skipped"])
    return [dataclasses.replace(t, idx=f"{prefix}-{t.idx}") for t in tasks]


def _teacher(config: ReDisConfig, train: list[RuleTask]) -> Any:
    if config.rule_oracle:
        known = {t.idx: t for t in train if isinstance(t, GeneratedTask) and t.rule is not None}
        return RuleOracle(known, p_true=config.oracle.p_true, pool_size=config.oracle.pool_size, seed=config.seed)
    return build_teacher(config.teacher)


def _lora(config: ReDisConfig) -> Any:
    return config.student.lora if config.student.finetune == "lora" else None


def _trained(out: Path, name: str, train_fn: Callable[[], Student]) -> Student:
    """The student saved in ``students/<name>`` (its stage record matches), else ``train_fn()`` saved there."""
    directory = out / "students" / name
    if (directory / STUDENT_FILE).exists():
        log.info("redis: reusing %s", directory)
        return Student.load(directory)
    student = train_fn()
    student.save(directory)
    return student


def _cached_eval(path: Path, fn: Callable[[], list[TaskResult]]) -> list[TaskResult]:
    if path.exists():
        return read_records(path, lambda d: TaskResult(**{k: v for k, v in d.items() if k != "correct"}))
    results = fn()
    write_jsonl(path, (r.to_dict() for r in results))
    return results


def _require_rules(stage2: Stage2, methods: list[str], output_dir: Path) -> None:
    """Fail before any training when the ReDis rows are asked for but stage 2 kept no rule."""
    if stage2.rule_generation or not {"redis_sft", *ALIGNED} & set(methods):
        return
    tasks = sum(int(d["tasks"]) for d in stage2.stats.values())
    rules = sum(int(d["rules"]) for d in stage2.stats.values())
    raise CotDistillError(
        f"stage 2 kept no rule: none of the teacher's {rules} distinct rules for {tasks} tasks reproduced a seen "
        f"output well enough (see {output_dir / 'stage2' / 'stats.json'} and {output_dir / 'augment' / 'rules.jsonl'}). "
        "Use a stronger teacher, sample more rules (augment.num_rules), lower filter.min_rule_score or keep "
        "every rule (filter.rule_generation: all); "
        "`methods: [direct, hs_base, io_sft]` runs the baselines alone. The teacher's records are kept: "
        "`--resume` reuses them."
    )


def _write_stage2(stage2: Stage2, directory: Path) -> None:
    write_jsonl(directory / "pairs.jsonl", (dataclasses.asdict(p) for p in stage2.pairs))
    write_jsonl(
        directory / "sft.jsonl", (dataclasses.asdict(i) for i in stage2.rule_generation + stage2.rule_following)
    )
    atomic_write_json(directory / "stats.json", stage2_summary(stage2))
