"""`lector models`: list the embedded models and their state; `--verify [NAME]` joins and checks them."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the embedded models; --verify joins and checks them",
        description="List the embedded GGUF models: are their parts installed, joined, verified?",
    )
    parser.add_argument(
        "--verify",
        nargs="?",
        const="all",
        metavar="NAME",
        help="join (if needed) and recompute the SHA-256 of NAME, or of every installed model",
    )
    parser.set_defaults(func=run)


def _state(status: Any) -> str:
    if not status.parts_installed:
        return "parts missing"
    if status.verified:
        return "verified"
    if status.assembled:
        return "joined, not verified"
    return "parts installed"


def _print_table(statuses: list[Any]) -> None:
    rows = [
        (("* " if s.default else "  ") + s.name, f"{s.size / 2**20:,.0f} MiB", _state(s), str(s.path)) for s in statuses
    ]
    header = ("  MODEL", "SIZE", "STATE", "CACHED FILE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    print("(* = default)")


def run(args: argparse.Namespace) -> int:
    from lector.llm.errors import ModelNotFoundError
    from lector.llm.models import get_spec, list_models, verify_model

    statuses = list_models()
    if args.verify is None:
        _print_table(statuses)
        for s in statuses:
            if not s.parts_installed:
                print(f"\n{s.name}: {get_spec(s.name).pip_install(s.missing_packages)}")
        return 0

    if args.verify == "all":
        names = [s.name for s in statuses if s.parts_installed or s.assembled]
        if not names:
            print("no model has its parts installed: pip install 'lector[models]'", file=sys.stderr)
            return 1
    else:
        names = [args.verify]
    failed = 0
    for name in names:
        try:
            path = verify_model(name, progress=True)
        except ModelNotFoundError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"{name}: OK ({path})")
    return 1 if failed else 0
