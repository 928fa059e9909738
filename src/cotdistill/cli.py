"""The ``cotdistill`` command line.

Each subcommand lives in its own module under ``cotdistill.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> int``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from cotdistill import __version__
from cotdistill.errors import CotDistillError
from cotdistill.redaction import RedactingFilter, redact_text


def build_parser() -> argparse.ArgumentParser:
    from cotdistill import commands

    parser = argparse.ArgumentParser(
        prog="cotdistill",
        description="Distil chain-of-thought reasoning from a teacher LM into a small student.",
    )
    parser.add_argument("--version", action="version", version=f"cotdistill {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse cannot take positionals after an option (`make SUITE.yaml -o DIR a.b=1`), so dotted
    # overrides that land after options are handed to commands that accept `overrides`.
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CotDistillError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed work is saved and the same command resumes it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
