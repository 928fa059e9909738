"""What ReDis stage 1 asks the teacher, typed: the protocol between ``augment`` and ``RuleOracle``.

``augment`` puts one of these in ``CompletionRequest.subject``; model teachers ignore it, the
offline ``RuleOracle`` answers from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cotdistill.teachers.base import RequestSubject


@dataclass(frozen=True)
class RuleRequest(RequestSubject):
    """Propose rules for task ``task_idx`` from its seen pairs."""

    task_idx: str


@dataclass(frozen=True)
class ApplyRequest(RequestSubject):
    """Apply ``rule`` (a rule stated for task ``task_idx``) to the seen ``input``."""

    task_idx: str
    rule: str
    input: str
