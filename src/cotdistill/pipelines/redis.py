"""The ``redis`` pipeline: ReDis reasoning distillation on rule-induction tasks (``pipeline: redis``).

Stages, each writing into the run directory and reused on ``--resume`` when complete:

1. ``data/<domain>/{train,test}.jsonl``: tasks (generated, or read from ReDis-format files),
   split 90/10 per domain with the run's seed, or with ``data.test_files`` a file as the whole
   test set (the domain's other tasks all train);
2. ``augment/``: teacher rule proposals and rule-following scores (``rules.jsonl``,
   ``applications.jsonl``); the ``oracle`` backend uses the generators' known rules;
3. ``stage2/``: preference pairs and the two SFT sets (``pairs.jsonl``, ``sft.jsonl``,
   ``stats.json``);
4. ``students/{io_sft,redis_sft,redis_orpo,redis_dpo}``: the IO-SFT baseline, the student after
   rule SFT, and after rule SFT + ORPO / + DPO (both aligned from the same SFT student);
5. ``eval/<method>.jsonl`` (direct answering, greedy) or ``eval/<method>.seed<S>.jsonl`` (one
   hypothesis search per ``search.seeds`` entry) + ``report.json`` / ``report.md``: exact-match
   accuracy on the unseen queries of the test tasks, per domain with 95% bootstrap intervals
   over (seeds, queries), next to each domain's majority-answer baseline, for ReDis and the
   baselines ``direct`` (few-shot answers from the base student), ``hs_base`` (hypothesis search
   with the base student) and ``io_sft`` (the student fine-tuned on input -> output, answering
   directly).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cotdistill.config import from_dict, save_config
from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.io import atomic_write_json, read_records, write_jsonl
from cotdistill.methods.redis.augment import AugmentConfig, augment
from cotdistill.methods.redis.oracle import RuleOracle
from cotdistill.methods.redis.pairs import FilterConfig, SFTItem, Stage2, build
from cotdistill.methods.redis.prompts import direct_prompt, output_target
from cotdistill.methods.redis.search import SearchConfig, TaskResult, direct_answers, hypothesis_search
from cotdistill.methods.redis.train import AlignLoss, ReDisTrainConfig, align, sft
from cotdistill.models import Student, StudentConfig, load_student
from cotdistill.models.student import STUDENT_FILE
from cotdistill.pipelines.base import register_pipeline
from cotdistill.pipelines.redis_report import stage2_summary, write_report
from cotdistill.tasks import TASKS
from cotdistill.tasks.inductive import DOMAINS, GeneratedTask, RuleTask, load_rule_tasks, sample_tasks, write_rule_tasks
from cotdistill.teachers import TeacherConfig, build_teacher

log = logging.getLogger(__name__)

METHODS = ("direct", "hs_base", "io_sft", "redis_sft", "redis_orpo", "redis_dpo")
ALIGNED: dict[str, AlignLoss] = {"redis_orpo": "orpo", "redis_dpo": "dpo"}


@dataclass
class DataConfig:
    domains: list[str] = field(
        default_factory=lambda: ["arc1d", "acre", "list_functions", "miniscan"],
        metadata={"help": "rule-induction domains (acre, arc1d, list_functions, miniscan)"},
    )
    tasks_per_domain: int = field(default=100, metadata={"help": "generated tasks per domain (before the split)"})
    files: dict[str, str] = field(
        default_factory=dict, metadata={"help": "domain -> ReDis-format JSONL file used instead of generated tasks"}
    )
    test_files: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "domain -> ReDis-format JSONL file used whole as the test set (e.g. the paper's "
            "acre_test.jsonl); that domain's generated tasks or `files` then all go to training"
        },
    )
    skip_invalid: bool = field(default=False, metadata={"help": "skip malformed lines of `files` (counted)"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of each domain's tasks held out for testing"})
    params: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"help": "domain -> generator params (the CoT task's Params, e.g. max_len)"}
    )
    n_seen: dict[str, int] = field(
        default_factory=dict, metadata={"help": "domain -> seen pairs per generated task (default: the paper's)"}
    )
    n_test: dict[str, int] = field(default_factory=dict, metadata={"help": "domain -> unseen pairs per generated task"})

    def __post_init__(self) -> None:
        if not self.domains:
            raise ValueError("domains must list at least one domain")
        unknown = [d for d in [*self.domains, *self.files, *self.test_files, *self.params] if d not in DOMAINS]
        if unknown:
            raise ValueError(f"unknown domain {unknown[0]!r} (known: {', '.join(DOMAINS.names())})")
        if self.tasks_per_domain < 2:
            raise ValueError(f"tasks_per_domain must be >= 2, got {self.tasks_per_domain}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


@dataclass
class OracleSettings:
    p_true: float = field(default=0.3, metadata={"help": "share of oracle rule samples that are the true rule"})
    pool_size: int = field(default=24, metadata={"help": "distinct wrong rules the oracle draws from per task"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_true <= 1.0:
            raise ValueError(f"p_true must be in [0, 1], got {self.p_true}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")


def _default_student() -> StudentConfig:
    return StudentConfig(finetune="lora")


@dataclass
class ReDisConfig:
    """A ReDis run: data, teacher, the four stages, inference and which rows the table shows."""

    seed: int = field(default=0, metadata={"help": "seed of generation, the split and training"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "tasks and split"})
    teacher: TeacherConfig = field(
        default_factory=TeacherConfig,
        metadata={"help": "teacher backend (oracle: known rules of generated tasks; openai | hf: an LM)"},
    )
    oracle: OracleSettings = field(default_factory=OracleSettings, metadata={"help": "offline oracle teacher"})
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"help": "stage 1: rule sampling/scoring"})
    filter: FilterConfig = field(default_factory=FilterConfig, metadata={"help": "stage 2: pairs and SFT sets"})
    student: StudentConfig = field(default_factory=_default_student, metadata={"help": "the student (LoRA by default)"})
    train: ReDisTrainConfig = field(
        default_factory=ReDisTrainConfig, metadata={"help": "stages 3-4: SFT then ORPO / DPO"}
    )
    search: SearchConfig = field(default_factory=SearchConfig, metadata={"help": "hypothesis-search inference"})
    methods: list[str] = field(default_factory=lambda: list(METHODS), metadata={"help": f"table rows: {METHODS}"})
    io_max_per_task: int = field(default=0, metadata={"help": "IO-SFT baseline: items per training task (0: all)"})
    torch_threads: int = field(
        default=0,
        metadata={"help": "CPU threads for torch in this run (0: torch's default; 1 is fastest for tiny models)"},
    )

    def __post_init__(self) -> None:
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0, got {self.torch_threads}")
        if self.io_max_per_task < 0:
            raise ValueError(f"io_max_per_task must be >= 0, got {self.io_max_per_task}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got {self.methods}")
        if self.teacher.backend == "oracle" and self.data.files:
            raise ValueError("the oracle teacher knows only generated tasks; use an LM teacher with data.files")


@register_pipeline("redis")
class ReDisPipeline:
    """ReDis end to end; see the module docstring for the stages and files."""

    Config = ReDisConfig

    def run(self, config: ReDisConfig, output_dir: Path, *, resume: bool = False) -> Path:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / "config.yaml")
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        train, test = make_split(config, output_dir / "data")
        log.info("redis: %d training tasks, %d test tasks", len(train), len(test))
        records = augment(train, _teacher(config, train), config.augment, output_dir / "augment", resume=resume)
        stage2 = build(records, {t.idx: t for t in train}, config.filter)
        _write_stage2(stage2, output_dir / "stage2")
        _require_rules(stage2, config.methods, output_dir)
        corpus = _corpus(train, test, stage2)
        wanted = set(config.methods)
        results: dict[str, list[list[TaskResult]]] = {}

        def direct(name: str, student: Student) -> None:
            path = output_dir / "eval" / f"{name}.jsonl"
            results[name] = [_cached_eval(path, lambda: direct_answers(student, test, config.search), resume)]

        def search(name: str, student: Student) -> None:
            results[name] = [
                _cached_eval(
                    output_dir / "eval" / f"{name}.seed{seed}.jsonl",
                    lambda seed=seed: hypothesis_search(student, test, config.search, seed),
                    resume,
                )
                for seed in config.search.seeds
            ]

        def trained(name: str, train_fn: Callable[[], Student]) -> Student:
            return _trained(output_dir / "students" / name, resume, train_fn)

        lora = _lora(config)
        base = load_student(config.student, corpus)
        if "direct" in wanted:
            direct("direct", base)
        if "hs_base" in wanted:
            search("hs_base", base)
        if "io_sft" in wanted:
            io_data = io_items(train, config.io_max_per_task, config.seed)
            io_dir = output_dir / "train" / "io_sft"
            direct(
                "io_sft",
                trained(
                    "io_sft", lambda: sft(load_student(config.student, corpus), io_data, config.train, io_dir, lora)
                ),
            )
        if wanted & {"redis_sft", *ALIGNED}:
            items = stage2.rule_generation + stage2.rule_following
            sft_dir = output_dir / "train" / "sft"
            student = trained(
                "redis_sft", lambda: sft(load_student(config.student, corpus), items, config.train, sft_dir, lora)
            )
            if "redis_sft" in wanted:
                search("redis_sft", student)
            for name, loss in ALIGNED.items():
                if name in wanted:
                    align_dir = output_dir / "train" / loss
                    search(
                        name,
                        trained(
                            name,
                            lambda loss=loss, align_dir=align_dir: align(
                                Student.load(output_dir / "students" / "redis_sft"),
                                stage2.pairs,
                                config.train,
                                align_dir,
                                lora,
                                loss,
                            ),
                        ),
                    )
        ordered = {name: results[name] for name in METHODS if name in results}
        return write_report(ordered, test, stage2, config, output_dir)


def make_split(config: ReDisConfig, data_dir: Path) -> tuple[list[RuleTask], list[RuleTask]]:
    """Per domain: 90/10 with the run's seed, or every task for training and ``test_files`` for testing.

    Both parts are written as ReDis-format JSONL (``data_dir/<domain>/{train,test}.jsonl``).
    """
    train: list[RuleTask] = []
    test: list[RuleTask] = []
    for domain in config.data.domains:
        tasks = _tasks(config, domain)
        if domain in config.data.test_files:
            domain_train = tasks
            domain_test = _file_tasks(config, config.data.test_files[domain], domain, f"{domain}-test")
        else:
            domain_train, domain_test = _hold_out(tasks, config, domain)
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
    if config.teacher.backend == "oracle":
        known = {t.idx: t for t in train if isinstance(t, GeneratedTask) and t.rule is not None}
        return RuleOracle(known, p_true=config.oracle.p_true, pool_size=config.oracle.pool_size, seed=config.seed)
    return build_teacher(config.teacher)


def io_items(tasks: list[RuleTask], max_per_task: int = 0, seed: int = 0) -> list[SFTItem]:
    """IO-SFT data: every seen pair as a query (the other seen pairs as examples) plus the unseen ones.

    With ``max_per_task`` a seeded sample of that many items is kept per task.
    """
    rng = random.Random(f"io:{seed}")
    items: list[SFTItem] = []
    for task in tasks:
        task_items: list[SFTItem] = []
        for i, pair in enumerate(task.train):
            others = task.train[:i] + task.train[i + 1 :]
            task_items.append(
                SFTItem("io", task.idx, task.domain, direct_prompt(others, pair.input), output_target(pair.output))
            )
        for pair in task.test:
            task_items.append(
                SFTItem("io", task.idx, task.domain, direct_prompt(task.train, pair.input), output_target(pair.output))
            )
        if max_per_task and len(task_items) > max_per_task:
            task_items = rng.sample(task_items, max_per_task)
        items += task_items
    return items


def _lora(config: ReDisConfig) -> Any:
    return config.student.lora if config.student.finetune == "lora" else None


def _trained(directory: Path, resume: bool, train_fn: Callable[[], Student]) -> Student:
    """The student saved in ``directory`` when resuming, else ``train_fn()`` saved there."""
    if resume and (directory / STUDENT_FILE).exists():
        log.info("redis: reusing %s", directory)
        return Student.load(directory)
    student = train_fn()
    student.save(directory)
    return student


def _cached_eval(path: Path, fn: Callable[[], list[TaskResult]], resume: bool) -> list[TaskResult]:
    if resume and path.exists():
        return read_records(path, lambda d: TaskResult(**{k: v for k, v in d.items() if k != "correct"}))
    results = fn()
    write_jsonl(path, (r.to_dict() for r in results))
    return results


def _corpus(train: list[RuleTask], test: list[RuleTask], stage2: Stage2) -> list[str]:
    """Texts the tiny preset's tokenizer is trained on: every prompt and target the run uses."""
    texts = [f"{i.prompt} {i.completion}" for i in stage2.rule_generation + stage2.rule_following]
    texts += [f"{p.prompt} {p.chosen} {p.rejected}" for p in stage2.pairs]
    texts += [f"{i.prompt} {i.completion}" for i in io_items(train)]
    texts += [direct_prompt(t.train, p.input) for t in test for p in t.test]
    return texts


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
