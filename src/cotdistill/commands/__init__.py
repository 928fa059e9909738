"""CLI subcommands: one module each, discovered by ``cotdistill.cli``."""
