"""Seeded bootstrap confidence intervals for accuracies and their macro averages.

Correctness is a 0/1 matrix per domain of shape ``(n_seeds, n_examples)`` (one row per
training seed, the same test examples in every row; a single evaluation is one row). The
bootstrap resamples seeds and examples independently (a two-level bootstrap), so with one seed
it is the ordinary example bootstrap and with several seeds the interval also covers seed
variance. A macro average resamples every domain independently and averages the domain means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Interval:
        return cls(float(data["mean"]), float(data["low"]), float(data["high"]))

    def format(self, digits: int = 1) -> str:
        """``"62.0 [55.0, 69.0]"`` in percent."""
        return f"{100 * self.mean:.{digits}f} [{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"


def _as_matrix(values: Sequence[float] | Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] == 0 or matrix.shape[0] == 0:
        raise ValueError(f"expected a non-empty (seeds, examples) matrix, got shape {matrix.shape}")
    return matrix


def _resampled_means(matrix: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of one ``(seeds, examples)`` matrix, shape ``(n_resamples,)``."""
    n_seeds, n_examples = matrix.shape
    seeds = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    examples = rng.integers(0, n_examples, size=(n_resamples, n_examples))
    return matrix[seeds[:, :, None], examples[:, None, :]].mean(axis=(1, 2))


def bootstrap_macro_ci(
    groups: Sequence[Sequence[float] | Sequence[Sequence[float]] | np.ndarray],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Mean of the group means with a percentile bootstrap interval (each group resampled alone)."""
    if not groups:
        raise ValueError("need at least one group")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    matrices = [_as_matrix(g) for g in groups]
    point = float(np.mean([m.mean() for m in matrices]))
    resampled = np.mean([_resampled_means(m, n_resamples, rng) for m in matrices], axis=0)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return Interval(point, float(low), float(high))


def bootstrap_ci(
    values: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Mean of ``values`` (a vector, or a ``(seeds, examples)`` matrix) with a bootstrap interval."""
    return bootstrap_macro_ci([values], n_resamples=n_resamples, confidence=confidence, seed=seed)
