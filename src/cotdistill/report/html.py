"""``report.html``: one self-contained page for reading what every run wrote, question by question.

The page holds the accuracy chart (the PNG, inlined as base64), the side-by-side accuracy table
and one table row per (run, seed, question): domain, question, gold answer, the run's rationale
(its generated text), the extracted answer and the verdict. Filters by domain, method and
verdict, a search box and "only where methods disagree" run in an inline script; the state sits
in the URL hash (``#method=sft&verdict=wrong``). Nothing is loaded from anywhere (a Content
Security Policy forbids it) and every piece of text is HTML-escaped: rationales are untrusted
model output and never reach the script.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape
from importlib.resources import files
from pathlib import Path

from cotdistill.io import atomic_write_text
from cotdistill.report.predictions import Prediction, collect_predictions, disagreements
from cotdistill.report.runs import Run, read_sources
from cotdistill.report.table import comparison_rows, ordered_domains

HTML_NAME = "report.html"
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_LONG_QUESTION = 400  # characters; longer questions fold into a <details>
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _asset(name: str) -> str:
    return files("cotdistill.report").joinpath("assets", name).read_text(encoding="utf-8")


def _options(values: Sequence[str], everything: str) -> str:
    items = [f'<option value="">{escape(everything)}</option>']
    items += [f'<option value="{escape(v)}">{escape(v)}</option>' for v in values]
    return "".join(items)


def _accuracy_table(runs: Sequence[Run], metric: str | None) -> str:
    headers, rows = comparison_rows(runs, metric=metric)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join("<td>" + _BOLD.sub(r"<strong>\1</strong>", escape(cell)) + "</td>" for cell in row)
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="accuracy"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _question_cell(prediction: Prediction) -> str:
    text = escape(prediction.question)
    if len(prediction.question) > _LONG_QUESTION:
        summary = escape(prediction.question[: _LONG_QUESTION // 2].rstrip()) + " …"
        text = f"<details><summary>{summary}</summary>{text}</details>"
    return f'<td class="text question">{text}<span class="id">{escape(prediction.example_id)}</span></td>'


def _row(prediction: Prediction, *, disagree: bool, start: bool, band: bool) -> str:
    method = prediction.run
    seed = f' <span class="tag">seed {escape(prediction.seed)}</span>' if prediction.seed else ""
    extracted = escape(prediction.extracted) if prediction.extracted is not None else '<span class="none">none</span>'
    classes = " ".join(c for c, on in (("pred", True), ("start", start), ("band", band)) if on)
    verdict = "right" if prediction.correct else "wrong"
    return (
        f'<tr class="{classes}" data-domain="{escape(prediction.domain)}" data-method="{escape(method)}" '
        f'data-verdict="{verdict}" data-disagree="{int(disagree)}">'
        f"<td>{escape(prediction.domain)}</td>{_question_cell(prediction)}"
        f'<td class="gold">{escape(prediction.gold)}</td>'
        f"<td>{escape(method)}{seed}</td>"
        f'<td class="text">{escape(prediction.rationale)}</td>'
        f'<td class="answer">{extracted}</td>'
        f'<td class="verdict">{"✓ right" if prediction.correct else "✗ wrong"}</td></tr>'
    )


def _ordered(predictions: Sequence[Prediction], runs: Sequence[Run]) -> list[Prediction]:
    """Grouped by question (domains in table order, questions as first seen), then run and seed."""
    domain_rank = {d: i for i, d in enumerate(ordered_domains(runs))}
    run_rank = {r.name: i for i, r in enumerate(runs)}
    question_rank: dict[tuple[str, str], int] = {}
    for p in predictions:
        question_rank.setdefault(p.question_key, len(question_rank))
    return sorted(
        predictions,
        key=lambda p: (
            domain_rank.get(p.domain, len(domain_rank)),
            question_rank[p.question_key],
            run_rank.get(p.run, len(run_rank)),
            p.seed,
        ),
    )


def render_html(
    runs: Sequence[Run],
    predictions: Sequence[Prediction],
    chart_png: bytes,
    *,
    metric: str | None = None,
    title: str = "Runs compared",
) -> str:
    """The whole page as one string (see the module docstring)."""
    ordered = _ordered(predictions, runs)
    disagree = disagreements(ordered)
    rows, previous, band = [], None, True
    for p in ordered:
        start = p.question_key != previous
        band = band != start  # alternate the shading per question
        rows.append(_row(p, disagree=p.question_key in disagree, start=start, band=band))
        previous = p.question_key
    domains = ordered_domains(runs)
    methods = list(dict.fromkeys(p.run for p in ordered))
    questions = len({p.question_key for p in ordered})
    chart = base64.b64encode(chart_png).decode("ascii")
    metric_name = metric or (runs[0].metric if runs else "strict")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_asset("report.css")}</style>
</head>
<body>
<header>
<h1>{escape(title)}</h1>
<p class="meta">{_count(len(runs), "run")} · {len(methods)} with predictions · {_count(questions, "question")} ·
{_count(len(ordered), "prediction")} · metric: {escape(metric_name)} · {len(disagree)} where runs disagree</p>
</header>
<section id="summary">
<h2>Accuracy</h2>
<img class="chart" alt="accuracy per domain and run" src="data:image/png;base64,{chart}">
{_accuracy_table(runs, metric)}
</section>
<section id="predictions">
<h2>Predictions</h2>
<form id="filters" onsubmit="return false">
<label>Domain <select id="f-domain">{_options(domains, "all domains")}</select></label>
<label>Method <select id="f-method">{_options(methods, "all methods")}</select></label>
<label>Verdict <select id="f-verdict">{_options(["right", "wrong"], "right and wrong")}</select></label>
<label>Search <input id="f-search" type="search" placeholder="question, rationale or answer"></label>
<label><input id="f-disagree" type="checkbox"> only where methods disagree</label>
<span id="count"><b id="shown">{len(ordered)}</b> of {len(ordered)} predictions shown</span>
</form>
<table id="rows">
<thead><tr><th>domain</th><th>question</th><th>gold</th><th>method</th><th>rationale</th><th>answer</th><th>verdict</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody>
</table>
<p id="none" class="none" hidden>No prediction matches these filters.</p>
</section>
<script>{_asset("report.js")}</script>
</body>
</html>
"""


def write_html_report(
    paths: Sequence[str | Path],
    runs: Sequence[Run],
    chart: str | Path,
    out_dir: str | Path,
    *,
    metric: str | None = None,
    title: str = "Runs compared",
) -> Path:
    """Write ``out_dir/report.html`` for the runs in ``paths`` (``chart``: their accuracy PNG)."""
    predictions = collect_predictions(read_sources(paths), metric=metric)
    page = render_html(runs, predictions, Path(chart).read_bytes(), metric=metric, title=title)
    path = Path(out_dir) / HTML_NAME
    atomic_write_text(path, page)
    return path
