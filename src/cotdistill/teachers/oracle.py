"""The ``oracle`` teacher: answers every request with the gold rationale carried in its ``meta``.

For offline runs and tests. The request's ``meta["rationale"]`` (the Example's own rationale)
is returned ``n`` times; a request without one comes back with an error, never a made-up text.
"""

from __future__ import annotations

from collections.abc import Sequence

from cotdistill.teachers.base import CompletionRequest, CompletionResult, TeacherConfig, register_teacher


class OracleTeacher:
    """Returns ``request.meta["rationale"]`` for each of the ``n`` samples."""

    id = "oracle"

    def complete(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult]:
        results = []
        for request in requests:
            rationale = request.meta.get("rationale")
            if not isinstance(rationale, str) or not rationale.strip():
                results.append(CompletionResult(request.key, [], error="oracle: no gold rationale in request.meta"))
                continue
            results.append(CompletionResult(request.key, [rationale] * request.n))
        return results


@register_teacher("oracle")
def build_oracle(cfg: TeacherConfig) -> OracleTeacher:
    return OracleTeacher()
