"""Experiment tracking shared by every trainer: ``report_to`` and ``run_name``.

Every trainer here is a ``transformers.Trainer`` (ours, or TRL's GRPO/SFT/ORPO/DPO ones), so
tracking is the Trainer's own ``report_to`` integrations (``tensorboard``, ``wandb``,
``trackio``, ``mlflow``, ...): whatever a trainer logs reaches them, method-specific scalars
included (PRADA's ``domain_loss``/``domain_acc``/``lambda``, GRPO's ``rewards/<name>/mean``).
TensorBoard writes under ``<trainer output_dir>/runs/`` unless ``TENSORBOARD_LOGGING_DIR`` is set;
services such as wandb read their keys from their own environment variables.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from cotdistill.errors import ConfigError

NONE = "none"
TRACKING_FIELDS = ("report_to", "run_name")


def report_to_field() -> Any:
    """The ``report_to`` dataclass field (default ``none``: nothing leaves the machine)."""
    return field(
        default=NONE,
        metadata={
            "help": "experiment trackers, comma-separated: none | tensorboard | wandb | trackio | mlflow | "
            "any transformers integration | all (the installed ones)"
        },
    )


def run_name_field() -> Any:
    """The ``run_name`` dataclass field (empty: the tracker's default name)."""
    return field(default="", metadata={"help": "run name shown by the tracker (empty: its default)"})


def supported_trackers() -> list[str]:
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    return sorted(INTEGRATION_TO_CALLBACK)


def parse_report_to(value: str) -> list[str]:
    """``"tensorboard,wandb"`` -> ``["tensorboard", "wandb"]``; ``none`` -> ``[]``; ``all`` -> ``["all"]``.

    Raises ``ValueError`` naming an unknown tracker (config loading turns it into a ``ConfigError``).
    """
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or names == [NONE]:
        return []
    if names == ["all"]:
        return names
    known = supported_trackers()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"report_to: unknown tracker {unknown[0]!r}; choose none, all or {', '.join(known)}")
    return names


def tracking_arguments(report_to: str, run_name: str, *, suffix: str = "") -> dict[str, Any]:
    """``report_to`` and ``run_name`` keyword arguments for ``TrainingArguments`` (or a TRL config).

    ``suffix`` tells a stage apart inside one run (``"/align"``). A tracker that is not installed
    is a ``ConfigError`` before training starts, not a failure after the model is loaded.
    """
    trackers = parse_report_to(report_to)
    if trackers and trackers != ["all"]:
        from transformers.integrations import get_available_reporting_integrations

        available = set(get_available_reporting_integrations())
        missing = [name for name in trackers if name not in available]
        if missing:
            raise ConfigError(f"report_to: {missing[0]} is not installed (pip install {missing[0]})")
    arguments: dict[str, Any] = {"report_to": trackers or NONE}
    if run_name:
        arguments["run_name"] = run_name + suffix
    return arguments
