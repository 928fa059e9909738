"""Pipelines run by ``cotdistill run``: the registry plus every built-in pipeline (imported on load)."""

from cotdistill.pipelines.base import PIPELINES, Pipeline, Recipe, load_recipe, register_pipeline
from cotdistill.plugins import import_submodules

import_submodules(__name__)

__all__ = ["PIPELINES", "Pipeline", "Recipe", "load_recipe", "register_pipeline"]
