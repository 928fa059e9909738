"""Suites: named domains with roles, written once as train/dev/test JSONL plus a manifest.

``make_suite(cfg, out_dir)`` writes ``out_dir/<domain>/<split>.jsonl``, the resolved config
(``suite.yaml``) and ``manifest.json`` (counts, seeds, roles, sha256 of every file, cotdistill
version). Each file is written atomically and the manifest last, so an interrupted run leaves
no manifest that points at missing data; re-running with the same config is a no-op while the
files still match their hashes. ``load_suite(out_dir)`` reads a suite back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cotdistill import __version__
from cotdistill.config import save_config, to_dict
from cotdistill.console import progress
from cotdistill.errors import ConfigError, DataError
from cotdistill.io import atomic_write_json, read_records, sha256_file, write_jsonl
from cotdistill.registry import did_you_mean
from cotdistill.tasks.base import SPLITS, TASKS, Example, ProceduralTask, Task, get_task

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Role(StrEnum):
    """What a domain is for: labelled training data, or a target the student must transfer to."""

    SOURCE = "source"
    TARGET_NEAR = "target_near"
    TARGET_FAR = "target_far"


@dataclass
class DomainSpec:
    """One domain of a suite: a registered task with its params, a role and split sizes."""

    task: str = field(default="", metadata={"help": "registered task name (see `cotdistill tasks list`)"})
    name: str = field(default="", metadata={"help": "domain name in the suite (default: the task name)"})
    role: Role = field(default=Role.SOURCE, metadata={"help": "source | target_near | target_far"})
    n_train: int = field(default=200, metadata={"help": "train examples (-1: all, file-backed tasks only)"})
    n_dev: int = field(default=50, metadata={"help": "dev examples (-1: all, file-backed tasks only)"})
    n_test: int = field(default=100, metadata={"help": "test examples (-1: all, file-backed tasks only)"})
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "the task's knobs (its Params fields)"})

    def __post_init__(self) -> None:
        if not self.task:
            raise ValueError("task is required (a registered task name; see `cotdistill tasks list`)")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}{did_you_mean(self.task, TASKS.names())}")
        self.name = self.name or self.task
        if not _NAME.match(self.name):
            raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {self.name!r}")
        for split in SPLITS:
            count = self.count(split)
            if count < -1:
                raise ValueError(f"n_{split} must be >= 0 (or -1 for all), got {count}")
            if count == -1 and issubclass(TASKS.get(self.task), ProceduralTask):
                raise ValueError(f"n_{split} = -1 (all) only works for file-backed tasks; '{self.task}' is unbounded")
        try:  # validate params against the task's Params now, not mid-run
            get_task(self.task, self.params)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def count(self, split: str) -> int:
        return {"train": self.n_train, "dev": self.n_dev, "test": self.n_test}[split]

    def expanded(self) -> list[DomainSpec]:
        """The domains this entry stands for: itself, or one per file when its task reads a directory."""
        try:
            parts = TASKS.get(self.task).domain_params(self.params)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if list(parts) == [""]:
            return [self]
        return [
            dataclasses.replace(self, name=f"{self.name}.{suffix}" if suffix else self.name, params=params)
            for suffix, params in parts.items()
        ]


@dataclass
class SuiteConfig:
    """A list of domains and one seed; see ``make_suite``."""

    seed: int = field(default=0, metadata={"help": "seed every domain's examples are drawn with"})
    domains: list[DomainSpec] = field(default_factory=list, metadata={"help": "the domains of the suite"})
    skip_invalid: bool = field(
        default=False, metadata={"help": "file-backed domains skip (and count) malformed records instead of failing"}
    )

    def __post_init__(self) -> None:
        if not self.domains:
            raise ValueError("domains must list at least one domain")
        self.domains = [part for spec in self.domains for part in spec.expanded()]
        names = [d.name for d in self.domains]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"domain names must be unique; repeated: {repeated} (set `name:` to tell them apart)")


@dataclass(frozen=True)
class Suite:
    """A suite on disk: ``examples(domain, split)``, ``domains(role=...)``, ``roles``, ``task(domain)``."""

    path: Path
    manifest: dict[str, Any]

    @property
    def roles(self) -> dict[str, Role]:
        return {name: Role(info["role"]) for name, info in self.manifest["domains"].items()}

    def domains(self, role: Role | str | None = None) -> list[str]:
        """Domain names in config order, optionally only those with ``role``."""
        wanted = Role(role) if role is not None else None
        return [name for name, r in self.roles.items() if wanted is None or r is wanted]

    def info(self, domain: str) -> dict[str, Any]:
        try:
            return self.manifest["domains"][domain]
        except KeyError:
            known = list(self.manifest["domains"])
            raise DataError(
                f"no domain '{domain}' in this suite{did_you_mean(domain, known)} (domains: {', '.join(known)})",
                path=str(self.path / MANIFEST),
            ) from None

    def examples(self, domain: str, split: str) -> list[Example]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
        entry = self.info(domain)["splits"][split]
        if entry["n"] == 0:
            return []
        return read_records(self.path / entry["file"], Example.from_dict)

    def task(self, domain: str) -> Task:
        """The task that scores this domain's predictions.

        Built from the recorded task + params with the recorded answer format, so scoring never
        re-reads a source file (the suite keeps working after the file moves).
        """
        info = self.info(domain)
        task = get_task(info["task"], info["params"])
        task.set_answer_format(info["answer_type"], info.get("labels", task.labels))
        return task


def make_suite(cfg: SuiteConfig, out_dir: str | Path, *, force: bool = False) -> Path:
    """Write the suite described by ``cfg`` to ``out_dir`` (a no-op when it is already there).

    Every domain is generated and checked for split overlap before anything is written; the old
    manifest is removed before the files change and the new one written last.
    """
    out_dir = Path(out_dir)
    config_hash = _config_hash(cfg)
    if not force and _up_to_date(out_dir, config_hash):
        log.info("suite in %s is up to date (same config, files match their hashes)", out_dir)
        return out_dir
    tasks = {spec.name: _build_task(spec, cfg.skip_invalid) for spec in cfg.domains}
    written = _generate(cfg, tasks)
    for spec in cfg.domains:
        check_disjoint(spec.name, written[spec.name])
    old_domains = _old_domains(out_dir)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    domains = {
        spec.name: _write_domain(out_dir, spec, tasks[spec.name], written[spec.name], cfg.seed) for spec in cfg.domains
    }
    for stale in old_domains - set(domains):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    save_config(cfg, out_dir / "suite.yaml")
    atomic_write_json(
        out_dir / MANIFEST,
        {"cotdistill_version": __version__, "config_hash": config_hash, "seed": cfg.seed, "domains": domains},
    )
    return out_dir


def _generate(cfg: SuiteConfig, tasks: dict[str, Task]) -> dict[str, dict[str, list[Example]]]:
    """``{domain: {split: examples}}`` for every domain of ``cfg``, labelled with the domain name."""
    written: dict[str, dict[str, list[Example]]] = {}
    jobs = [(spec, split) for spec in cfg.domains for split in SPLITS]
    for spec, split in progress(jobs, desc="making suite"):
        count = spec.count(split)
        examples = [_rename(e, spec) for e in tasks[spec.name].examples(split, count, cfg.seed)] if count else []
        written.setdefault(spec.name, {})[split] = examples
        if len(examples) < count:
            log.warning("domain '%s': only %d of %d %s examples available", spec.name, len(examples), count, split)
    return written


def _write_domain(
    out_dir: Path, spec: DomainSpec, task: Task, splits: dict[str, list[Example]], seed: int
) -> dict[str, Any]:
    """Write one domain's split files; returns its manifest entry."""
    files = {}
    for split, examples in splits.items():
        relative = f"{spec.name}/{split}.jsonl"
        write_jsonl(out_dir / relative, (e.to_dict() for e in examples))
        files[split] = {
            "file": relative,
            "n": len(examples),
            "requested": spec.count(split),
            "sha256": sha256_file(out_dir / relative),
        }
    return {
        "task": spec.task,
        "role": spec.role.value,
        "family": task.family.value,
        "answer_type": task.answer_type.value,
        "labels": list(task.labels),
        "has_rationale": task.has_rationale,
        "source": task.source,
        "params": to_dict(task.params),
        "seed": seed,
        "skipped": getattr(task, "skipped", 0),
        "splits": files,
    }


def load_suite(path: str | Path, *, verify: bool = True) -> Suite:
    """Read a suite written by ``make_suite``; ``verify`` checks every file against its sha256."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise DataError(
            "not a suite directory (no manifest.json); make one with `cotdistill data make`", path=str(path)
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", path=str(manifest_path), line=exc.lineno) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("domains"), dict):
        raise DataError("manifest has no 'domains' mapping", path=str(manifest_path))
    if verify:
        for name, info in manifest["domains"].items():
            for split, entry in info["splits"].items():
                file = path / entry["file"]
                if not file.exists():
                    raise DataError(f"domain '{name}' {split} file is missing", path=str(file))
                if sha256_file(file) != entry["sha256"]:
                    raise DataError(
                        f"domain '{name}' {split} file changed since the suite was made (sha256 mismatch); "
                        "re-run `cotdistill data make` or load with verify=False",
                        path=str(file),
                    )
    return Suite(path, manifest)


def check_disjoint(domain: str, splits: dict[str, list[Example]]) -> None:
    """Raise DataError when two splits of ``domain`` share a question (by question hash)."""
    hashes = {split: {e.content_hash: e for e in examples} for split, examples in splits.items()}
    names = list(hashes)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = hashes[first].keys() & hashes[second].keys()
            if shared:
                example = hashes[first][next(iter(shared))]
                raise DataError(
                    f"domain '{domain}': splits '{first}' and '{second}' share {len(shared)} question(s), "
                    f"e.g. {example.question[:80]!r}; use distinct split files or let splits be assigned by hash"
                )


def _build_task(spec: DomainSpec, skip_invalid: bool) -> Task:
    params = dict(spec.params)
    fields = {f.name for f in dataclasses.fields(TASKS.get(spec.task).Params)}
    if skip_invalid and "skip_invalid" in fields:
        params["skip_invalid"] = True
    return get_task(spec.task, params)


def _rename(example: Example, spec: DomainSpec) -> Example:
    """Label an example with its suite domain (ids keep their per-question suffix)."""
    if spec.name == spec.task:
        return dataclasses.replace(example, domain=spec.name)
    suffix = example.id.removeprefix(f"{spec.task}-")
    return dataclasses.replace(example, id=f"{spec.name}-{suffix}", domain=spec.name)


def _config_hash(cfg: SuiteConfig) -> str:
    """Hash of the resolved config, the version and every input file the params name."""
    inputs = {p: sha256_file(Path(p)) for spec in cfg.domains for p in _strings(spec.params) if Path(p).is_file()}
    data = {"config": to_dict(cfg), "version": __version__, "inputs": inputs}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _up_to_date(out_dir: Path, config_hash: str) -> bool:
    try:
        load = load_suite(out_dir)
    except DataError:
        return False
    return load.manifest.get("config_hash") == config_hash


def _old_domains(out_dir: Path) -> set[str]:
    try:
        return set(load_suite(out_dir, verify=False).manifest["domains"])
    except DataError:
        return set()
