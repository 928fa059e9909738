"""The public Python API: the stages of the command line as typed functions.

```python
from cotdistill import api

suite = api.make_suite({"domains": [...]}, "runs/suite")          # or api.load_suite("runs/suite")
rationales = api.generate(suite, "runs/rationales", {"teacher": {"backend": "oracle"}})
student = api.train(api.training_data(suite, rationales), "runs/sft", method="sft")
report = api.evaluate(student, suite, "runs/sft/eval")
comparison = api.compare(["runs/sft/eval", "runs/prada/eval"], "runs/compare", html=True)
```

Every ``config`` argument takes the library's config dataclass, a plain dict (validated like a
recipe section: an unknown key or a bad value is a ``ConfigError`` naming the key) or, where
stated, a YAML path. Each function writes the same files as its CLI command, so the two mix: a
directory written by one is read by the other. The CLI commands are thin layers over these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cotdistill.config import from_dict, load_config, to_dict
from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.recipe import suite_questions
from cotdistill.errors import CotDistillError, DataError
from cotdistill.tasks import Example, Task
from cotdistill.tasks.suite import Role, Suite, SuiteConfig

if TYPE_CHECKING:  # evaluation, training and reports load only when a function needs them
    from cotdistill.eval.evaluate import EvalConfig
    from cotdistill.methods.base import TrainConfig, TrainData
    from cotdistill.models import Student, StudentConfig
    from cotdistill.report.runs import Run

__all__ = [
    "Comparison",
    "Rationales",
    "compare",
    "evaluate",
    "generate",
    "load_examples",
    "load_student",
    "load_suite",
    "make_suite",
    "run",
    "train",
    "training_data",
]

log = logging.getLogger(__name__)
C = TypeVar("C")
RESOLVED_CONFIG = "config.yaml"


def _config(cls: type[C], value: C | Mapping[str, Any] | str | Path | None, overrides: Sequence[str] = ()) -> C:
    """``cls`` from an instance, a dict or a YAML path, plus dotted overrides."""
    if isinstance(value, str | Path):
        return load_config(cls, value, overrides)
    if isinstance(value, cls) and not overrides:
        return value
    base = to_dict(value) if is_dataclass(value) else dict(value or {})
    return load_config(cls, None, overrides, base=base)


# ---------------------------------------------------------------------------------------- suites


def make_suite(
    config: SuiteConfig | Mapping[str, Any] | str | Path,
    out_dir: str | Path,
    *,
    overrides: Sequence[str] = (),
    force: bool = False,
) -> Suite:
    """Build the suite (train/dev/test JSONL per domain + manifest.json) into ``out_dir`` and load it.

    A no-op when ``out_dir`` already holds this suite; ``force`` writes it again.
    """
    from cotdistill.tasks.suite import load_suite as read_suite
    from cotdistill.tasks.suite import make_suite as write_suite

    return read_suite(write_suite(_config(SuiteConfig, config, overrides), out_dir, force=force))


def load_suite(directory: str | Path) -> Suite:
    """A suite directory written by ``make_suite`` / ``cotdistill data make`` (file hashes verified)."""
    from cotdistill.tasks.suite import load_suite as read_suite

    return read_suite(directory)


# ---------------------------------------------------------------------------------------- rationales


@dataclass(frozen=True)
class Rationales:
    """A rationale store on disk: ``directory`` holds ``rationales.jsonl`` and ``stats.json``."""

    directory: Path
    stats: dict[str, Any]

    def kept(self) -> list[Example]:
        """The kept rationales as ``Example``s (see ``distill.store.load_kept``)."""
        from cotdistill.distill.store import load_kept

        return load_kept(self.directory)


def generate(
    questions: Suite | Sequence[Example],
    out_dir: str | Path,
    config: GenerateConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    split: str = "train",
    roles: Sequence[Role | str] = (Role.SOURCE,),
    tasks: Mapping[str, Task] | None = None,
    shots: Mapping[str, Sequence[Example]] | None = None,
    show_progress: bool = True,
) -> Rationales:
    """Sample, filter and store teacher rationales (``config``: teacher, k, temperature, keep policy).

    With a suite, the questions are the ``split`` questions of the domains with one of ``roles``
    (empty: every domain), scored by the suite's tasks. Resumes when run again on ``out_dir``.
    """
    if isinstance(questions, Suite):
        questions, tasks = suite_questions(questions, split, roles)
    if not questions:
        raise CotDistillError("no questions to generate rationales for (check the roles, split and domains)")
    stats = generate_rationales(
        _config(GenerateConfig, config), questions, out_dir, tasks=tasks, shots=shots, show_progress=show_progress
    )
    return Rationales(Path(out_dir), stats)


# ---------------------------------------------------------------------------------------- training


def load_examples(path: str | Path, *, need_rationale: bool = False) -> list[Example]:
    """Examples from a rationale store (its kept samples) or from an examples JSONL file."""
    from cotdistill.distill.store import load_kept
    from cotdistill.io import iter_jsonl, read_records

    first = next((obj for _, obj in iter_jsonl(path)), None)
    if isinstance(first, dict) and "example_id" in first and "kept" in first:
        examples = load_kept(path)
    else:
        examples = read_records(path, Example.from_dict)
    if not examples:
        raise DataError("no usable examples", path=str(path))
    if need_rationale and not any(e.rationale for e in examples):
        raise DataError("no example has a rationale (generate them with `cotdistill generate`)", path=str(path))
    return examples


def training_data(suite: Suite | str | Path, rationales: Rationales | str | Path) -> TrainData:
    """Kept rationales as labelled data, the suite's target train questions unlabelled, and every
    domain's answer instruction (what the ``cot`` pipeline trains each method on)."""
    from cotdistill.pipelines.cot import training_data as suite_training_data

    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    directory = rationales.directory if isinstance(rationales, Rationales) else Path(rationales)
    return suite_training_data(suite, directory)


def train(
    data: TrainData | Sequence[Example] | str | Path,
    out_dir: str | Path,
    *,
    method: str = "sft",
    method_config: Any = None,
    student: Student | StudentConfig | Mapping[str, Any] | None = None,
    train: TrainConfig | Mapping[str, Any] | None = None,
    unlabelled: Sequence[Example] | str | Path = (),
    suite: Suite | str | Path | None = None,
    resume: bool = False,
) -> Student:
    """Train a student with a registered method; writes ``out_dir/final`` and returns the student.

    ``data``: a ``TrainData``, examples with rationales, or a rationales / examples JSONL path.
    ``method_config``: the method's ``Config`` (or a dict of its fields). ``student``: a loaded
    student, or the config of a fresh one (default ``tiny``, whose tokenizer is trained on the
    data). ``unlabelled``: target-domain questions (PRADA), when ``data`` is not a ``TrainData``.
    ``suite``: when ``data`` is not a ``TrainData``, the suite whose tasks give each domain's answer
    instruction and family, so training prompts equal ``evaluate``'s (else the registered task named
    like the domain). ``resume`` continues from the last checkpoint in ``out_dir``.
    """
    from cotdistill.methods.base import TrainConfig, TrainData, get_method
    from cotdistill.models import Student, StudentConfig
    from cotdistill.models import load_student as build_student
    from cotdistill.pipelines.cot import training_corpus

    if not isinstance(data, TrainData):
        labelled = load_examples(data, need_rationale=True) if isinstance(data, str | Path) else list(data)
        extra = load_examples(unlabelled) if isinstance(unlabelled, str | Path) else list(unlabelled)
        data = TrainData(labelled, extra, **({} if suite is None else _domain_prompts(suite)))
        _warn_unknown_domains(data)
    method_cls = get_method(method)
    if not isinstance(method_config, method_cls.Config):
        method_config = from_dict(method_cls.Config, method_config, where=f"method '{method}'")
    train_cfg = _config(TrainConfig, train)  # every config is checked before a model is built
    if not isinstance(student, Student):
        student = build_student(_config(StudentConfig, student), training_corpus(data))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return method_cls().train(student, data, train_cfg, method_config, out_dir, resume=resume)


def _domain_prompts(suite: Suite | str | Path) -> dict[str, dict[str, str]]:
    """``TrainData``'s ``instructions`` and ``families`` from the suite's tasks, as evaluation uses them."""
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    tasks = {d: suite.task(d) for d in suite.domains()}
    return {
        "instructions": {d: t.answer_instruction for d, t in tasks.items()},
        "families": {d: str(t.family) for d, t in tasks.items()},
    }


def _warn_unknown_domains(data: TrainData) -> None:
    from cotdistill.tasks import TASKS

    unknown = sorted({e.domain for e in data.labelled if e.domain not in data.instructions and e.domain not in TASKS})
    if unknown:
        log.warning(
            "domain(s) %s: no registered task of that name and no suite given, so their training prompts "
            "carry no answer instruction (evaluation on a suite adds its task's); give the suite",
            ", ".join(unknown),
        )


# ---------------------------------------------------------------------------------------- evaluation


def load_student(source: Student | str | Path) -> Student:
    """A student checkpoint (``Student.save`` directory), or any model ``student.model`` accepts
    (a pulled preset name, a Hugging Face directory, a ``.gguf`` file) for a zero-shot baseline."""
    from cotdistill.models import Student, StudentConfig
    from cotdistill.models import load_student as build_student
    from cotdistill.models.student import STUDENT_FILE

    if isinstance(source, Student):
        return source
    if (Path(source) / STUDENT_FILE).exists():
        return Student.load(source)
    return build_student(StudentConfig(model=str(source)))


def evaluate(
    student: Student | str | Path,
    suite: Suite | str | Path,
    out_dir: str | Path,
    config: EvalConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    domains: Sequence[str] | None = None,
    meta: Mapping[str, Any] | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Score a student on the suite's domains (default all); writes ``predictions.jsonl``,
    ``report.json`` and ``report.md`` into ``out_dir`` and returns the report's data. With
    ``config.shots`` the solved examples come from each domain's train split (else dev, else the
    evaluated split itself, never the queried question)."""
    from cotdistill.eval import EvalConfig
    from cotdistill.eval import evaluate as run_evaluation
    from cotdistill.io import ensure_output_dir
    from cotdistill.models import Student
    from cotdistill.report.render import write_eval_markdown

    cfg = _config(EvalConfig, config)
    ensure_output_dir(out_dir)  # an output path that is a file is a one-line error before any work
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    names = list(domains) if domains else suite.domains()
    for name in names:
        suite.info(name)  # an unknown domain raises with a suggestion
    if meta is None:
        meta = {"suite": str(suite.path), **({} if isinstance(student, Student) else {"checkpoint": str(student)})}
    report = run_evaluation(
        load_student(student),
        {d: suite.examples(d, cfg.split) for d in names},
        {d: suite.roles[d] for d in names},
        cfg,
        out_dir,
        tasks={d: suite.task(d) for d in names},
        meta=meta,
        show_progress=show_progress,
        shot_pool={d: shot_pool(suite, d, cfg.split) for d in names} if cfg.shots else None,
    )
    write_eval_markdown(report, out_dir)
    return report


def shot_pool(suite: Suite, domain: str, split: str) -> list[Example]:
    """Labelled examples few-shot prompts draw from: the train split, else dev, else the evaluated split."""
    for candidate in ("train", "dev"):
        if candidate != split:
            labelled = [e for e in suite.examples(domain, candidate) if e.answer]
            if labelled:
                return labelled
    return suite.examples(domain, split)


# ---------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: the runs read, ``comparison.md``, ``accuracy.png`` and ``report.html``."""

    runs: list[Run]
    markdown: Path
    chart: Path
    html: Path | None = None


def compare(
    runs: Sequence[str | Path], out_dir: str | Path, *, metric: str | None = None, html: bool = False
) -> Comparison:
    """Put eval or pipeline runs (directories or ``report.json`` files) side by side in ``out_dir``.

    ``html`` also writes ``report.html``: one self-contained page with every question, each
    run's rationale, extracted answer and verdict, filters, the chart and the table.
    """
    from cotdistill.report import compare_runs

    loaded, markdown, chart = compare_runs(runs, out_dir, metric=metric)
    page = None
    if html:
        from cotdistill.report.html import write_html_report

        page = write_html_report(runs, loaded, chart, Path(out_dir), metric=metric)
    return Comparison(loaded, markdown, chart, page)


def run(
    recipe: str | Path | None = None,
    output_dir: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    resume: bool = False,
) -> Path:
    """Run a recipe end to end (``None``: the embedded default); returns the report directory.

    ``output_dir`` defaults to ``runs/<recipe name>``; a directory that already holds a run is
    refused unless ``resume`` is set.
    """
    from cotdistill.locking import output_lock
    from cotdistill.pipelines import load_recipe

    loaded = load_recipe(recipe, list(overrides))
    output = Path(output_dir) if output_dir is not None else Path("runs") / Path(loaded.source).stem
    with output_lock(output):  # a second process on the same directory stops with the holder's name
        if (output / RESOLVED_CONFIG).exists() and not resume:
            raise CotDistillError(
                f"{output} already holds a run; pass --resume to continue it, or --output DIR to start a new one"
            )
        log.info("running pipeline '%s' from %s into %s", loaded.pipeline, loaded.source, output)
        return loaded.cls().run(loaded.config, output, resume=resume)
