"""``cotdistill tasks list`` and ``cotdistill tasks sample NAME -n 3``."""

from __future__ import annotations

import argparse
import json

from cotdistill.console import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="list tasks or print sample examples")
    sub = parser.add_subparsers(dest="tasks_command", metavar="ACTION", required=True)
    list_parser = sub.add_parser("list", help="every registered task: family, rationale, source")
    list_parser.set_defaults(func=_list)
    sample = sub.add_parser("sample", help="print examples of one task with their rationales")
    sample.add_argument("name")
    sample.add_argument("-n", type=int, default=3, help="how many examples (default 3)")
    sample.add_argument("--split", default="train", choices=["train", "dev", "test"])
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--json", action="store_true", help="print JSONL records instead of text")
    sample.add_argument(
        "overrides",
        nargs="*",
        metavar="PARAM=VALUE",
        help="task parameters, e.g. max_steps=3 or path=data/test.jsonl (values parsed as YAML)",
    )
    sample.set_defaults(func=_sample)


def _list(args: argparse.Namespace) -> int:
    from cotdistill.tasks import TASKS

    rows = []
    for name in TASKS.names():
        cls = TASKS.get(name)
        rows.append([name, cls.family.value, "yes" if cls.has_rationale else "no", cls.source, cls.answer_type.value])
    print_table(["task", "family", "rationale", "source", "answer"], rows)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from cotdistill.config import apply_overrides
    from cotdistill.tasks import get_task

    task = get_task(args.name, apply_overrides({}, args.overrides))
    for example in task.examples(args.split, args.n, args.seed):
        if args.json:
            print(json.dumps(example.to_dict(), ensure_ascii=False))
            continue
        print(f"--- {example.id} [{example.domain}]")
        print(f"Q: {example.question}")
        if example.rationale:
            print(f"Rationale: {example.rationale}")
        print(f"A: {example.answer}\n")
    return 0
