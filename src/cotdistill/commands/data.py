"""``cotdistill data make SUITE.yaml -o DIR [key=value ...]`` and ``cotdistill data show DIR``."""

from __future__ import annotations

import argparse

from cotdistill.console import print_table

_EXAMPLE = """example SUITE.yaml:
  seed: 0
  domains:
    - {task: arith_shopping, role: source, n_train: 400, n_dev: 50, n_test: 100}
    - {task: arith_sport, role: target_near, n_train: 200, n_dev: 50, n_test: 100}
    - {task: last_letter, name: letters4, role: target_far, params: {min_words: 4, max_words: 4}}
    - {task: gsm8k, role: target_far, n_train: 0, n_dev: 0, n_test: -1, params: {split_files: {test: test.jsonl}}}
n = -1 takes every example of a file-backed domain. params.path splits one file by question hash
(80/10/10); params.split_files gives a file per split. `cotdistill tasks list` names the tasks."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="make a suite of train/dev/test JSONL per domain, or show one")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    make = sub.add_parser(
        "make",
        help="write train/dev/test JSONL per domain plus manifest.json",
        description="Write DIR/<domain>/{train,dev,test}.jsonl, DIR/suite.yaml and DIR/manifest.json.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    make.add_argument("suite", help="suite YAML (seed, domains: [{task, name, role, n_train, n_dev, n_test, params}])")
    make.add_argument("overrides", nargs="*", help="dotted overrides, e.g. seed=3 domains.0.n_train=50")
    make.add_argument("-o", "--output", required=True, help="output directory")
    make.add_argument("--skip-invalid", action="store_true", help="file-backed domains skip malformed records")
    make.add_argument("--force", action="store_true", help="rewrite even when the suite is up to date")
    make.set_defaults(func=_make)
    show = sub.add_parser("show", help="print the domains, roles and counts of a suite directory")
    show.add_argument("directory")
    show.set_defaults(func=_show)


def _make(args: argparse.Namespace) -> int:
    from cotdistill import api

    overrides = [*args.overrides, *(["skip_invalid=true"] if args.skip_invalid else [])]
    suite = api.make_suite(args.suite, args.output, overrides=overrides, force=args.force)
    _print(suite.manifest)
    print(f"suite written to {suite.path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from cotdistill import api

    _print(api.load_suite(args.directory).manifest)
    return 0


def _print(manifest: dict) -> None:
    rows = []
    for name, info in manifest["domains"].items():
        counts = [info["splits"][split]["n"] for split in ("train", "dev", "test")]
        rows.append([name, info["task"], info["role"], info["answer_type"], *counts, info["skipped"]])
    print_table(["domain", "task", "role", "answer", "train", "dev", "test", "skipped"], rows)
