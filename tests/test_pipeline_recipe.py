"""Recipe loading: pipeline selection, did-you-mean for unknown pipelines, file + key in errors."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cotdistill.errors import ConfigError
from cotdistill.pipelines import PIPELINES, load_recipe, register_pipeline


@dataclass
class _EchoConfig:
    steps: int = field(default=1, metadata={"help": "how many steps"})
    name: str = field(default="x", metadata={"help": "a name"})

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@register_pipeline("test_echo")
class _Echo:
    Config = _EchoConfig

    def run(self, config, output_dir, *, resume=False):
        return output_dir


def _recipe(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_loads_named_pipeline_with_overrides(tmp_path):
    recipe = load_recipe(_recipe(tmp_path, "pipeline: test_echo\nsteps: 3\n"), ["name=y"])
    assert recipe.pipeline == "test_echo" and recipe.cls is PIPELINES.get("test_echo")
    assert recipe.config == _EchoConfig(steps=3, name="y")


def test_unknown_pipeline_suggests_closest(tmp_path):
    path = _recipe(tmp_path, "pipeline: test_ecko\n")
    with pytest.raises(
        ConfigError, match=r"recipe.yaml: 'pipeline': unknown pipeline 'test_ecko'; did you mean 'test_echo'\?"
    ):
        load_recipe(path)


def test_unknown_key_and_bad_value_name_file_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"recipe.yaml: unknown key 'stepz'; did you mean 'steps'\?"):
        load_recipe(_recipe(tmp_path, "pipeline: test_echo\nstepz: 2\n"))
    with pytest.raises(ConfigError, match=r"recipe.yaml \+ overrides: .*steps must be >= 1, got 0"):
        load_recipe(_recipe(tmp_path, "pipeline: test_echo\n"), ["steps=0"])
    with pytest.raises(ConfigError, match="'pipeline' must be a string"):
        load_recipe(_recipe(tmp_path, "pipeline: [a]\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.pipeline in PIPELINES
