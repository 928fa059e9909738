"""Report rendering: runs side by side (table + PNG) from eval and comparison reports, CLI, errors."""

import json

import numpy as np
import pytest

from cotdistill.cli import main
from cotdistill.errors import DataError
from cotdistill.eval.summary import summarize
from cotdistill.report import compare_runs, load_runs, render_comparison

ROLES = {"arith_shopping": "source", "arith_travel": "target_near", "coin_flip": "target_far"}
CHANCE = {"arith_shopping": 0.1, "arith_travel": 0.1, "coin_flip": 0.5}


def _summary(rates, seeds=1):
    rng = np.random.default_rng(0)
    correct = {
        m: {d: (rng.random((seeds, 40)) < rate).astype(float) for d, rate in zip(ROLES, rates)}
        for m in ("strict", "flexible")
    }
    return summarize(correct, ROLES, CHANCE, n_resamples=100)


def _write_eval(directory, rates):
    directory.mkdir(parents=True)
    report = {"kind": "eval", "meta": {}, "config": {}, "metric": "strict", "summary": _summary(rates), "examples": {}}
    (directory / "report.json").write_text(json.dumps(report))


def _comparison(rates_by_variant):
    return {
        "kind": "comparison",
        "metric": "strict",
        "runs": {
            name: {
                "seeds": [0, 1],
                "summary": _summary(rates, seeds=2),
                "per_seed": {"0": {"in_domain": {"strict": rates[0]}}, "1": {"in_domain": {"strict": rates[0]}}},
            }
            for name, rates in rates_by_variant.items()
        },
        "files": {"chart": "accuracy.png"},
    }


def test_compare_eval_and_pipeline_runs(tmp_path):
    _write_eval(tmp_path / "sft-run", [0.9, 0.4, 0.5])
    pipeline = tmp_path / "pipe"
    pipeline.mkdir()
    (pipeline / "report.json").write_text(json.dumps(_comparison({"sft": [0.8, 0.3, 0.5], "prada": [0.8, 0.6, 0.5]})))
    runs, markdown, chart = compare_runs([tmp_path / "sft-run", pipeline], tmp_path / "out")
    assert [r.name for r in runs] == ["sft-run", "pipe/sft", "pipe/prada"]
    text = markdown.read_text()
    assert "| domain | role | chance | sft-run | pipe/sft | pipe/prada |" in text
    assert "| arith_travel | near | 10.0 |" in text
    assert "**out-of-domain (all targets)**" in text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000


def test_single_comparison_uses_variant_names_and_renders_seeds(tmp_path):
    report = _comparison({"sft": [0.9, 0.2, 0.5]})
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert [r.name for r in load_runs([tmp_path])] == ["sft"]
    text = render_comparison(report, chart="accuracy.png")
    assert "## Per seed" in text and "| sft | 1 | 90.0 | - |" in text
    assert "in-domain (source) strict accuracy" in text and "![accuracy per domain](accuracy.png)" in text


def test_report_cli_and_errors(tmp_path, capsys):
    _write_eval(tmp_path / "a", [0.7, 0.3, 0.5])
    _write_eval(tmp_path / "b", [0.2, 0.1, 0.5])
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "arith_shopping" in out and "comparison.md" in out
    assert (tmp_path / "cmp" / "accuracy.png").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no report.json" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text('{"kind": "other"}')
    with pytest.raises(DataError, match="not a cotdistill report"):
        load_runs([tmp_path / "bad"])
