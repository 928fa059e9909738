"""What the reasoner of an ``lm_guided`` run copies from the rationales it is given.

For every rationale condition of a run's ``report.json`` (greedy answers), per question type:

* ``reasoner EM``: the reasoner's answer against the gold answer;
* ``stated EM``: the answer the rationale states itself (``answers.answer_span``: its
  "The answer is X." sentence), against the gold answer; no stated answer counts as wrong;
* ``copies``: the share of questions whose rationale states an answer and the reasoner answers
  exactly that (normalised);
* ``stated``: the share of rationales that state an answer at all;

and, when the run has both, the RL-minus-KD difference in stated EM question by question (did RL
teach the rationale model itself to answer better, whatever the reasoner makes of it).

A reasoner whose EM equals the stated EM and that copies nearly always adds nothing to the
rationale; RL rewards computed through it then reward the rationale's own answer sentence.

    python benchmarks/lm_guided_copying.py RUN_DIR [-o OUT.md]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from cotdistill.answers import answer_span
from cotdistill.eval.stats import Interval, bootstrap_ci
from cotdistill.methods.lm_guided.rewards import em_score

Row = dict[str, float]
KD, RL = "reasoner + KD rationales", "reasoner + RL rationales"


def _stated_right(example: dict, stated: str | None) -> bool:
    """Whether the answer the rationale states (``stated``, its answer span) is the gold answer."""
    return stated is not None and em_score(stated, example["gold"]) == 1.0


def copying_table(examples: list[dict]) -> dict[str, dict[str, Row]]:
    """``{condition: {question type or "all": {reasoner_em, stated_em, copies, stated, n}}}`` (percentages)."""
    counts: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for example in examples:
        if example.get("rationale") is None:
            continue
        stated = answer_span(example["rationale"])
        greedy = example.get("greedy") or ""
        for key in (example.get("type") or "all", "all"):
            row = counts[example["condition"]][key]
            row["n"] += 1
            row["reasoner_em"] += em_score(greedy, example["gold"])
            row["stated"] += stated is not None
            row["stated_em"] += _stated_right(example, stated)
            row["copies"] += stated is not None and em_score(greedy, stated) == 1.0
    return {
        condition: {
            key: {name: (value if name == "n" else 100 * value / row["n"]) for name, value in row.items()}
            for key, row in sorted(by_type.items(), key=lambda item: item[0] == "all")
        }
        for condition, by_type in counts.items()
    }


def stated_difference(examples: list[dict], first: str, second: str) -> Interval:
    """``first`` minus ``second`` in stated EM, question by question (paired by id), 95% bootstrap."""
    stated = defaultdict(dict)
    for example in examples:
        if example["condition"] in (first, second) and example.get("rationale") is not None:
            stated[example["condition"]][example["id"]] = float(
                _stated_right(example, answer_span(example["rationale"]))
            )
    ids = sorted(stated[first].keys() & stated[second].keys())
    return bootstrap_ci(np.array([stated[first][i] - stated[second][i] for i in ids]))


def markdown(table: dict[str, dict[str, Row]]) -> str:
    lines = [
        "| condition | questions | n | reasoner EM | stated EM | reasoner copies the stated answer | rationale states an answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for condition, by_type in table.items():
        for key, row in by_type.items():
            lines.append(
                f"| {condition} | {key} | {row['n']:.0f} | {row['reasoner_em']:.1f} | {row['stated_em']:.1f} | "
                f"{row['copies']:.1f} | {row['stated']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="an lm_guided run directory (its report.json)")
    parser.add_argument("-o", "--out", type=Path, help="write the table to this Markdown file too")
    args = parser.parse_args()
    report = json.loads((args.run / "report.json").read_text())
    text = markdown(copying_table(report["examples"]))
    if {RL, KD} <= {e["condition"] for e in report["examples"]}:
        difference = stated_difference(report["examples"], RL, KD)
        text += f"\nStated EM, RL minus KD rationales, question by question: {difference.format()} points (95% bootstrap).\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
