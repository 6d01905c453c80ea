"""The `lector` command. Each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging

COMMAND_MODULES = [
    "lector.cli.models",
    "lector.cli.chat",
    "lector.cli.serve",
    "lector.cli.index",
    "lector.cli.search",
    "lector.cli.ask",
    "lector.cli.mcp",
    "lector.cli.serve_model",
    "lector.cli.sandbox",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lector", description="Lector: agents and long-document reading.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130

