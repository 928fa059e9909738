"""The pipeline registry and recipe loading (what ``cotdistill run`` executes).

A recipe is a YAML mapping with ``pipeline: <name>`` (default ``cot``); every other key is
validated against that pipeline's ``Config`` dataclass, so a typo fails with the file and the
dotted key. A pipeline is a class registered with ``@register_pipeline(name)`` that has a
``Config`` dataclass and ``run(config, output_dir, *, resume) -> Path`` returning the report
directory. With no recipe file, the embedded ``cotdistill/recipes/default.yaml`` is used.

Every pipeline follows one contract: it declares its stages with a fingerprint of their inputs
and checks them all before running any (``pipelines.stages``: one reuse / re-run / ``--resume``
rule), composes the stages a method package exposes, and writes its run with the one writer
(``pipelines.outputs``: ``config.yaml``, ``report.json`` with its ``kind``, ``report.md``, PNG).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cotdistill.config import apply_overrides, from_dict, load_yaml
from cotdistill.errors import ConfigError, UnknownNameError
from cotdistill.registry import Registry

DEFAULT_PIPELINE = "cot"
DEFAULT_RECIPE = "default.yaml"


class Pipeline(Protocol):
    """What a registered pipeline provides."""

    Config: ClassVar[type]

    def run(self, config: Any, output_dir: Path, *, resume: bool = False) -> Path: ...


PIPELINES: Registry[type[Pipeline]] = Registry("pipeline")


def register_pipeline(name: str) -> Callable[[type[Pipeline]], type[Pipeline]]:
    """Class decorator: register a pipeline class (with a ``Config`` dataclass) under ``name``."""

    def decorator(cls: type[Pipeline]) -> type[Pipeline]:
        if not hasattr(cls, "Config"):
            raise TypeError(f"pipeline '{name}' must define a Config dataclass")
        return PIPELINES.register(name)(cls)

    return decorator


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe: the pipeline's name, its class, its validated config and where it came from."""

    pipeline: str
    cls: type[Pipeline]
    config: Any
    source: str


def default_recipe_path() -> Path:
    """The embedded default recipe shipped as package data."""
    return Path(str(resources.files("cotdistill").joinpath("recipes", DEFAULT_RECIPE)))


def load_recipe(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe file (or the embedded default), apply ``a.b=value`` overrides, validate.

    Raises ConfigError naming the file and key for an unknown pipeline (with did-you-mean),
    unknown keys, wrong types and values the config's ``__post_init__`` refuses.
    """
    source = Path(path) if path is not None else default_recipe_path()
    data = load_yaml(source)
    where = str(source)
    if overrides:
        data = apply_overrides(data, overrides)
        where = f"{where} + overrides"
    data = dict(data)
    name = data.pop("pipeline", DEFAULT_PIPELINE)
    if not isinstance(name, str):
        raise ConfigError(f"{where}: 'pipeline' must be a string, got {name!r}")
    try:
        cls = PIPELINES.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{where}: 'pipeline': {exc}") from None
    config = from_dict(cls.Config, data, where=where)
    return Recipe(pipeline=name, cls=cls, config=config, source=str(source))
