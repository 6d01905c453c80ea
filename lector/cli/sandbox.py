"""`lector sandbox setup|check`: build or check the code interpreter's sandbox environment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sandbox", help="build or check the code interpreter's sandbox")
    sub = p.add_subparsers(dest="sandbox_command", required=True)
    setup = sub.add_parser("setup", help="build the sandbox's Python environment (numpy, pandas, matplotlib)")
    setup.add_argument("--env", type=Path, default=None, help="where (default: the shared or per-user folder)")
    setup.set_defaults(func=run_setup)
    check = sub.add_parser("check", help="say whether bwrap and the environment are ready")
    check.set_defaults(func=run_check)


def run_setup(args: argparse.Namespace) -> int:
    from lector.tools.code.sandbox import setup_env

    print(f"sandbox environment ready: {setup_env(args.env)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from lector.tools.code.sandbox import INSTALL_HINT, bwrap_path, default_env_dir, env_ready

    bwrap, env = bwrap_path(), default_env_dir()
    print(f"bwrap: {bwrap or 'MISSING - ' + INSTALL_HINT}")
    print(f"environment: {env} ({'ready' if env_ready(env) else 'missing: run lector sandbox setup'})")
    return 0 if bwrap and env_ready(env) else 1
