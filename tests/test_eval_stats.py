"""Bootstrap intervals: contain the mean, shrink with more data, seeded, macro over domains."""

import numpy as np
import pytest

from cotdistill.eval.stats import Interval, bootstrap_ci, bootstrap_macro_ci


def test_interval_contains_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small = rng.random(40) < 0.6
    large = rng.random(4000) < 0.6
    ci_small = bootstrap_ci(small, seed=3)
    ci_large = bootstrap_ci(large, seed=3)
    for ci, data in ((ci_small, small), (ci_large, large)):
        assert ci.mean == pytest.approx(data.mean())
        assert ci.low < ci.mean < ci.high
    assert ci_large.high - ci_large.low < (ci_small.high - ci_small.low) / 4
    assert ci_large.low < 0.6 < ci_large.high


def test_seeded_and_constant_data():
    data = [1, 0, 1, 1, 0, 0, 1, 1]
    assert bootstrap_ci(data, seed=5) == bootstrap_ci(data, seed=5)
    assert bootstrap_ci([1, 1, 1]) == Interval(1.0, 1.0, 1.0)


def test_macro_average_is_mean_of_domain_means():
    a, b = [1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]
    ci = bootstrap_macro_ci([a, b], seed=0)
    assert ci.mean == pytest.approx((1.0 + 5 / 8) / 2)
    assert ci.low <= ci.mean <= ci.high


def test_seed_rows_widen_the_interval():
    examples = (np.arange(200) % 2).astype(float)
    same = np.stack([examples, examples, examples])
    varied = np.stack([examples, np.ones(200), np.zeros(200)])
    assert bootstrap_ci(varied).high - bootstrap_ci(varied).low > 2 * (bootstrap_ci(same).high - bootstrap_ci(same).low)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1, 0], confidence=1.5)
