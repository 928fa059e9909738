"""Tasks: the ``Example`` record, the registry and every built-in task (imported on load)."""

from cotdistill.answers import AnswerType
from cotdistill.plugins import import_submodules
from cotdistill.tasks.base import SPLITS, TASKS, Example, Family, ProceduralTask, Task, get_task, register_task

import_submodules(__name__)

__all__ = [
    "SPLITS",
    "TASKS",
    "AnswerType",
    "Example",
    "Family",
    "ProceduralTask",
    "Task",
    "get_task",
    "register_task",
]
