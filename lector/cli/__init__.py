"""The `lector` command. Each subcommand lives in its own module with `register(subparsers)`.

A person's mistake or an unreachable server ends the command with one line on stderr; `-v` (anywhere on the
command line) shows the traceback and debug logs instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

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
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _verbose_everywhere(sub)
    return parser


def _verbose_everywhere(sub: argparse._SubParsersAction) -> None:
    """`-v` after the subcommand too; SUPPRESS keeps a subcommand from resetting a `-v` given before it."""
    for parser in sub.choices.values():
        parser.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs"
        )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _verbose_everywhere(action)


def _user_errors() -> tuple[type[BaseException], ...]:
    from lector.llm.errors import LLMError
    from lector.retrieval.parsers.base import DocumentError

    return (LLMError, DocumentError, OSError, ValueError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`lector search … | head`): stop quietly, and let nothing flush into the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except _user_errors() as exc:
        if args.verbose:
            raise
        print(f"lector {args.command}: {exc} (-v shows the details)", file=sys.stderr)
        return 1
