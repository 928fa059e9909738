"""Teacher backends behind one protocol: ``openai`` (any OpenAI-compatible server), ``hf``, ``oracle``.

``build_teacher(TeacherConfig(backend=...))`` returns an object with ``id`` and
``complete(requests) -> list[CompletionResult]``. A backend is one module: its settings
dataclass plus ``@register_teacher(name, Settings)`` on its factory; every backend module
registers itself in ``TEACHERS`` when this package is imported.
"""

from cotdistill.plugins import import_submodules
from cotdistill.stopping import trim_at_stop
from cotdistill.teachers.base import (
    TEACHERS,
    CompletionRequest,
    CompletionResult,
    ExampleSubject,
    RequestSubject,
    Teacher,
    TeacherBackend,
    TeacherConfig,
    TeacherRefusedError,
    backend_spec,
    build_teacher,
    register_teacher,
)

import_submodules(__name__)

__all__ = [
    "TEACHERS",
    "CompletionRequest",
    "CompletionResult",
    "ExampleSubject",
    "RequestSubject",
    "Teacher",
    "TeacherBackend",
    "TeacherConfig",
    "TeacherRefusedError",
    "backend_spec",
    "build_teacher",
    "register_teacher",
    "trim_at_stop",
]
