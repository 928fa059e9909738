"""Paired differences between two methods over the same seeds and test examples."""

import numpy as np
import pytest

from cotdistill.eval.summary import difference_verdict, paired_difference
from cotdistill.report.render import render_comparison


def _correct(matrix: np.ndarray) -> dict:
    return {"strict": {"d": matrix}, "flexible": {"d": matrix}}


def test_a_small_consistent_gain_is_told_apart_only_when_paired() -> None:
    rng = np.random.default_rng(0)
    base = (rng.random((3, 200)) < 0.5).astype(float)
    better = base.copy()
    better[:, :12] = 1.0  # the same questions, a few more right in every seed
    gain = float((better - base).mean())
    diff = paired_difference(_correct(base), _correct(better), {"d": "target_near"}, n_resamples=2000)
    interval = diff["domains"]["d"]["strict"]
    assert interval["mean"] == pytest.approx(gain) and interval["low"] > 0
    verdict = difference_verdict(diff, "out_of_domain", "strict", "prada", "sft")
    assert "prada is better" in verdict and "paired" in verdict


def test_identical_methods_cannot_be_told_apart() -> None:
    base = np.eye(4)[:3]
    diff = paired_difference(_correct(base), _correct(base.copy()), {"d": "source"})
    assert diff["groups"]["in_domain"]["strict"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    assert "cannot be told apart from zero" in difference_verdict(diff, "in_domain", "strict", "b", "a")
    assert "no near targets" in difference_verdict(diff, "target_near", "strict", "b", "a")


def test_unpaired_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot pair matrices of shapes"):
        paired_difference(_correct(np.ones((2, 5))), _correct(np.ones((3, 5))), {"d": "source"})


def test_comparison_report_renders_the_paired_section() -> None:
    base, other = np.zeros((2, 10)), np.ones((2, 10))
    diff = paired_difference(_correct(base), _correct(other), {"d": "target_far"})
    summary = {
        "domains": {
            "d": {
                "role": "target_far",
                "n": 10,
                "seeds": 2,
                "chance": 0.1,
                "strict": {"mean": 0.0, "low": 0.0, "high": 0.0},
                "flexible": {"mean": 0.0, "low": 0.0, "high": 0.0},
            }
        },
        "groups": {},
    }
    report = {
        "kind": "comparison",
        "title": "t",
        "metric": "strict",
        "runs": {
            name: {"method": name, "seeds": [0, 1], "summary": summary, "per_seed": {}} for name in ("sft", "prada")
        },
        "paired": {"prada": {"baseline": "sft", "difference": diff}},
    }
    text = render_comparison(report)
    assert "## Paired differences" in text and "prada - sft, far targets, strict: 100.0 [100.0, 100.0]" in text


def _evaluation(score: float) -> dict:
    """One seed's evaluation report: 5 examples of domain ``d``, each scoring ``score``."""
    entry = {"mean": score, "low": score, "high": score}
    return {
        "summary": {
            "domains": {"d": {"role": "source", "chance": None}},
            "groups": {"in_domain": {"strict": entry, "flexible": entry}},
        },
        "examples": {"d": [{"strict": score, "flexible": score}] * 5},
    }


def test_comparison_pairs_each_variant_over_the_seeds_it_shares_with_the_baseline() -> None:
    from cotdistill.pipelines.cot import CotConfig, VariantConfig, comparison_report
    from cotdistill.tasks.suite import DomainSpec, SuiteConfig

    config = CotConfig(
        suite=SuiteConfig(domains=[DomainSpec(task="arith_shopping")]),
        variants=[VariantConfig(name="sft"), VariantConfig(name="fast", seeds=[1])],
        seeds=[0, 1],
    )
    evaluations = {"sft": {0: _evaluation(0.0), 1: _evaluation(1.0)}, "fast": {1: _evaluation(1.0)}}
    report = comparison_report(config, evaluations, {})
    assert report["paired"]["fast"]["seeds"] == [1]
    # seed 1 against seed 1: no difference (pairing with seed 0 would give +100)
    assert report["paired"]["fast"]["difference"]["groups"]["in_domain"]["strict"]["mean"] == 0.0
    assert report["runs"]["sft"]["summary"]["domains"]["d"]["strict"]["mean"] == 0.5

    evaluations["fast"] = {2: _evaluation(1.0)}  # no seed in common: nothing to pair
    assert "fast" not in comparison_report(config, evaluations, {})["paired"]
