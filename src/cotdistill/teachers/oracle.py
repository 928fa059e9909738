"""The ``oracle`` teacher: answers every request with the gold rationale its ``ExampleSubject`` carries.

For offline runs and tests. A request whose ``subject`` is an ``ExampleSubject`` with a rationale
(the Example's own) gets that rationale ``n`` times; any other request comes back with an error,
never a made-up text. It has no settings (``OracleTeacherConfig``) and ignores the temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cotdistill.teachers.base import (
    CompletionRequest,
    CompletionResult,
    ExampleSubject,
    TeacherConfig,
    register_teacher,
)


@dataclass
class OracleTeacherConfig:
    """The ``oracle`` backend's settings: none."""


class OracleTeacher:
    """Returns the request's ``ExampleSubject.rationale`` for each of the ``n`` samples."""

    id = "oracle"

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        results = []
        for request in requests:
            subject = request.subject
            rationale = subject.rationale if isinstance(subject, ExampleSubject) else None
            if not isinstance(rationale, str) or not rationale.strip():
                results.append(CompletionResult(request.key, [], error="oracle: no gold rationale in request.subject"))
                continue
            results.append(CompletionResult(request.key, [rationale] * request.n))
        return results


@register_teacher("oracle", OracleTeacherConfig, sampled=False)
def build_oracle(cfg: TeacherConfig) -> OracleTeacher:
    return OracleTeacher()
