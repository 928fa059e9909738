"""``cotdistill report --html``: one self-contained page of every prediction, escaped, with filters
that work in a real browser (headless Chromium; skipped where it is not installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cotdistill.cli import main
from cotdistill.eval.evaluate import EvalConfig, build_report
from cotdistill.eval.scoring import score_example
from cotdistill.report.predictions import collect_predictions, disagreements
from cotdistill.report.runs import read_sources
from cotdistill.tasks import get_task

ROLES = {"arith_shopping": "source", "coin_flip": "target_far"}
HOSTILE = '<script>alert("pwned")</script><img src=x onerror="alert(1)"> & "quotes"'


def _write_eval(directory: Path, wrong_every: int, hostile: bool = False) -> dict:
    """An eval report whose student is right except on every ``wrong_every``-th question."""
    tasks = {d: get_task(d) for d in ROLES}
    examples = {d: tasks[d].examples("test", 6, seed=0) for d in ROLES}
    results = {}
    for domain, items in examples.items():
        for i, example in enumerate(items):
            text = example.rationale if i % wrong_every else "I am not sure. The answer is 12345."
            if hostile and i == 1:
                text = f"{HOSTILE} {text}"
            results[example.id] = score_example(tasks[domain], example, [text]).to_dict()
    report = build_report(examples, ROLES, tasks, results, EvalConfig(bootstrap_resamples=50))
    directory.mkdir(parents=True)
    (directory / "report.json").write_text(json.dumps(report))
    return report


class Rows(HTMLParser):
    """Collects the prediction rows of a page (visible or hidden) and the shown-count text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.scripts = 0
        self.external: list[str] = []
        self.shown = ""
        self._in_shown = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "tr" and "pred" in (values.get("class") or "").split():
            self.rows.append(values)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if values.get(key) and not values[key].startswith("data:"):
                self.external.append(values[key])
        self._in_shown = values.get("id") == "shown"

    def handle_data(self, data):
        if self._in_shown:
            self.shown += data

    def handle_endtag(self, tag):
        self._in_shown = False


def _parse(text: str) -> Rows:
    parser = Rows()
    parser.feed(text)
    return parser


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, dict[str, dict]]:
    reports = {"sft": _write_eval(tmp_path / "sft", 2), "prada": _write_eval(tmp_path / "prada", 3, hostile=True)}
    assert main(["report", str(tmp_path / "sft"), str(tmp_path / "prada"), "--html", "-o", str(tmp_path / "out")]) == 0
    return tmp_path / "out" / "report.html", reports


def _wrong(report: dict, domain: str | None = None) -> int:
    return sum(not row["strict"] for d, rows in report["examples"].items() if domain in (None, d) for row in rows)


def test_page_holds_every_prediction_escaped_and_self_contained(page) -> None:
    path, reports = page
    text = path.read_text(encoding="utf-8")
    parsed = _parse(text)
    assert len(parsed.rows) == sum(len(rows) for r in reports.values() for rows in r["examples"].values()) == 24
    assert {row["data-method"] for row in parsed.rows} == {"sft", "prada"}
    assert sum(row["data-verdict"] == "wrong" for row in parsed.rows) == _wrong(reports["sft"]) + _wrong(
        reports["prada"]
    )
    assert parsed.scripts == 1 and parsed.external == []  # one inline script; nothing loaded from outside
    assert "<script>alert" not in text and "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in text
    assert 'src="data:image/png;base64,iVBOR' in text  # the chart, inlined
    assert "default-src 'none'" in text
    first = reports["sft"]["examples"]["arith_shopping"][0]
    assert escape(first["question"]) in text and escape(first["prediction"]) in text


def test_disagreement_is_per_question_across_runs(tmp_path: Path) -> None:
    reports = {"sft": _write_eval(tmp_path / "sft", 2), "prada": _write_eval(tmp_path / "prada", 3)}
    predictions = collect_predictions(read_sources([tmp_path / "sft", tmp_path / "prada"]))
    expected = {
        (domain, a["id"])
        for domain in ROLES
        for a, b in zip(reports["sft"]["examples"][domain], reports["prada"]["examples"][domain])
        if (a["extracted_strict"], a["strict"]) != (b["extracted_strict"], b["strict"])
    }
    assert disagreements(predictions) == expected and expected


def test_comparison_runs_read_each_seed_and_warn_on_a_missing_one(tmp_path: Path, caplog) -> None:
    seed_report = _write_eval(tmp_path / "pipe" / "runs" / "sft" / "seed-0" / "eval", 2)
    comparison = {
        "kind": "comparison",
        "metric": "strict",
        "runs": {"sft": {"method": "sft", "seeds": [0, 1], "summary": seed_report["summary"], "per_seed": {}}},
    }
    (tmp_path / "pipe" / "report.json").write_text(json.dumps(comparison))
    predictions = collect_predictions(read_sources([tmp_path / "pipe"]))
    assert {(p.run, p.seed) for p in predictions} == {("sft", "0")} and len(predictions) == 12
    assert "seed-1" in caplog.text


def test_report_without_html_writes_no_page(tmp_path: Path) -> None:
    _write_eval(tmp_path / "sft", 2)
    assert main(["report", str(tmp_path / "sft"), "-o", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out" / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_filters_work_in_headless_chromium(page, tmp_path: Path) -> None:
    path, reports = page
    url = path.resolve().as_uri()

    def visible(fragment: str) -> tuple[int, str]:
        dom = _parse(_chromium(tmp_path, "--dump-dom", f"{url}#{fragment}").stdout)
        assert len(dom.rows) == 24
        return sum("hidden" not in row for row in dom.rows), dom.shown

    wrong = _wrong(reports["prada"])
    assert visible("method=prada&verdict=wrong") == (wrong, str(wrong))
    runs = [path.parent.parent / "sft", path.parent.parent / "prada"]
    coin_disagree = 2 * sum(
        domain == "coin_flip" for domain, _ in disagreements(collect_predictions(read_sources(runs)))
    )
    assert coin_disagree and visible("domain=coin_flip&disagree=1") == (coin_disagree, str(coin_disagree))

    screenshot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,900", f"{url}#q=pwned")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
