"""Options shared by the commands that read documents: the cache and the chunk size."""

from __future__ import annotations

import argparse
from typing import Any


def add_library_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None, help="cache folder (default $LECTOR_CACHE or ~/.cache/lector)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--chunk-tokens", type=int, default=512, help="target chunk size in tokens (default 512)")


def library_from(args: argparse.Namespace) -> Any:
    from lector.retrieval.library import Library

    return Library(cache_dir=args.cache_dir, use_cache=not args.no_cache, target_tokens=args.chunk_tokens)
