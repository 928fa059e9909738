"""Teacher backends behind one protocol: ``openai`` (any OpenAI-compatible server), ``hf``, ``oracle``.

``build_teacher(TeacherConfig(backend=...))`` returns an object with ``id`` and
``complete(requests) -> list[CompletionResult]``; every backend module registers itself in
``TEACHERS`` when this package is imported.
"""

from cotdistill.plugins import import_submodules
from cotdistill.teachers.base import (
    TEACHERS,
    CompletionRequest,
    CompletionResult,
    Teacher,
    TeacherConfig,
    TeacherRefusedError,
    build_teacher,
    register_teacher,
    trim_at_stop,
)

import_submodules(__name__)

__all__ = [
    "TEACHERS",
    "CompletionRequest",
    "CompletionResult",
    "Teacher",
    "TeacherConfig",
    "TeacherRefusedError",
    "build_teacher",
    "register_teacher",
    "trim_at_stop",
]
