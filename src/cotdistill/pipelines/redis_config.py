"""The ``redis`` pipeline's recipe: data, teacher, the stages' settings and the reported conditions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cotdistill.methods.redis import AugmentConfig, FilterConfig, ReDisTrainConfig, SearchConfig
from cotdistill.models import StudentConfig
from cotdistill.tasks.inductive import DOMAINS
from cotdistill.teachers import TeacherConfig
from cotdistill.teachers.oracle import OracleTeacherConfig

REDIS_CONDITIONS = ("direct", "hs_base", "io_sft", "redis_sft", "redis_orpo", "redis_dpo")
"""The rows a ReDis run can report (``methods`` in a recipe): baselines, then ReDis after each stage."""


@dataclass
class ReDisDataConfig:
    """Which rule tasks to use and how they are split."""

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
class ReDisOracleConfig:
    """The offline oracle teacher of generated tasks."""

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
    data: ReDisDataConfig = field(default_factory=ReDisDataConfig, metadata={"help": "tasks and split"})
    teacher: TeacherConfig = field(
        default_factory=TeacherConfig,
        metadata={"help": "teacher backend (oracle: known rules of generated tasks; openai | hf: an LM)"},
    )
    oracle: ReDisOracleConfig = field(default_factory=ReDisOracleConfig, metadata={"help": "offline oracle teacher"})
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"help": "stage 1: rule sampling/scoring"})
    filter: FilterConfig = field(default_factory=FilterConfig, metadata={"help": "stage 2: pairs and SFT sets"})
    student: StudentConfig = field(default_factory=_default_student, metadata={"help": "the student (LoRA by default)"})
    train: ReDisTrainConfig = field(
        default_factory=ReDisTrainConfig, metadata={"help": "stages 3-4: SFT then ORPO / DPO"}
    )
    search: SearchConfig = field(default_factory=SearchConfig, metadata={"help": "hypothesis-search inference"})
    methods: list[str] = field(
        default_factory=lambda: list(REDIS_CONDITIONS), metadata={"help": f"table rows: {REDIS_CONDITIONS}"}
    )
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
        unknown = [m for m in self.methods if m not in REDIS_CONDITIONS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {list(REDIS_CONDITIONS)}, got {self.methods}")
        if self.rule_oracle and self.data.files:
            raise ValueError("the oracle teacher knows only generated tasks; use an LM teacher with data.files")

    @property
    def rule_oracle(self) -> bool:
        """Whether the teacher is the offline oracle, which ReDis answers with a ``RuleOracle`` of the
        generated tasks' known rules."""
        return isinstance(self.teacher.options, OracleTeacherConfig)
