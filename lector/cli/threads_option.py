"""`--threads N` for every command that runs the embedded model: it sets $LECTOR_THREADS for this process."""

from __future__ import annotations

import argparse
import os

from lector.llm.threads import ENV, parse_threads

HELP = (
    f"CPU threads of the embedded model (default ${ENV}, else one per core not busy with other work when it "
    "loads; fewer threads stay fast when other programs keep cores busy)"
)


def _threads(text: str) -> int:
    try:
        return parse_threads(text, "--threads")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_threads, default=None, metavar="N", help=HELP)


def apply_threads(args: argparse.Namespace) -> None:
    """Make `--threads` the choice of every embedded model this process loads."""
    if getattr(args, "threads", None) is not None:
        os.environ[ENV] = str(args.threads)
