"""Distillation methods, one module (or package) each, registered by name (imported on load)."""

from cotdistill.methods.base import METHODS, Method, TrainConfig, TrainData, get_method, register_method
from cotdistill.plugins import import_submodules

import_submodules(__name__)

__all__ = ["METHODS", "Method", "TrainConfig", "TrainData", "get_method", "register_method"]
