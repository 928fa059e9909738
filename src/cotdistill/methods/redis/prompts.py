"""The three ReDis prompts (rule generation, rule following, direct answering) and their parsers.

The same texts go to the teacher (as one user message) and, wrapped by ``Student.prompt``, to the
student, so what the student is trained on is what the teacher was asked. Targets:

* rule generation -> the rule in words (``extract_rule`` drops a leading ``Rule:`` label and
  keeps the first paragraph);
* rule following and direct answering -> ``Output: <output>`` (read with ``Domain.parse_output``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cotdistill.tasks.inductive import Pair, format_pairs, format_question

RULE_INSTRUCTION = "State the rule that maps every input to its output, in one or two sentences."
APPLY_INSTRUCTION = 'Apply the rule to the input. Reply with "Output: " followed by the output only.'
DIRECT_INSTRUCTION = 'Reply with "Output: " followed by the output for the new input only.'
OUTPUT_PREFIX = "Output:"
"""How every rule-following and direct-answer target starts (``output_target``)."""
_RULE_LABEL = re.compile(r"^\s*(?:the\s+)?(?:rule|hypothesis)\s*(?:is)?\s*:\s*", re.IGNORECASE)


def rule_prompt(seen: Sequence[Pair]) -> str:
    """Ask for the hidden rule behind the seen pairs."""
    return f"Here are input/output examples produced by one hidden rule.\n{format_pairs(seen)}\n{RULE_INSTRUCTION}"


def apply_prompt(rule: str, value: str) -> str:
    """Ask to apply ``rule`` to one input."""
    return f"Rule: {rule}\n{APPLY_INSTRUCTION}\nInput: {value}"


def direct_prompt(seen: Sequence[Pair], value: str) -> str:
    """Ask for the output of a new input directly from the seen pairs (few-shot / IO-SFT)."""
    return f"{format_question(seen, value)}\n{DIRECT_INSTRUCTION}"


def output_target(output: str) -> str:
    """The completion a rule-following or direct-answer prompt is trained to produce."""
    return f"{OUTPUT_PREFIX} {output}"


def extract_rule(text: str) -> str | None:
    """The rule stated in a response: first paragraph, ``Rule:`` label removed, spaces collapsed."""
    paragraph = text.strip().split("\n\n")[0]
    rule = " ".join(_RULE_LABEL.sub("", paragraph).split())
    return rule or None
