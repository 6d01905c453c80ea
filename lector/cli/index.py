"""`lector index PATH…`: parse, chunk and BM25-index files or folders into the content-hash cache."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from lector.cli.library_options import add_library_options, library_from
from lector.cli.terminal import printable


def register(subparsers: Any) -> None:
    index = subparsers.add_parser(
        "index",
        help="parse, chunk and index documents into the cache",
        description="Parse, chunk and BM25-index documents (txt md html pdf docx pptx csv tsv xlsx) "
        "into the on-disk cache.",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are walked)")
    add_library_options(index)
    index.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    index.set_defaults(func=run_index)


def run_index(args: argparse.Namespace) -> int:
    library = library_from(args)
    started = time.perf_counter()
    result = library.add_paths(args.paths, progress=not args.json and sys.stderr.isatty())
    elapsed = time.perf_counter() - started
    docs = library.documents()
    summary = {
        "documents": len(docs),
        "chunks": sum(d.chunks for d in docs),
        "tokens": library.total_tokens(),
        "cached": sum(1 for d in docs if d.cached),
        "errors": [{"path": p, "error": e} for p, e in result.errors.items()],
        "elapsed_s": round(elapsed, 3),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for doc in docs:
            state = "cached" if doc.cached else "indexed"
            print(printable(f"{state:8} {doc.source}: {doc.chunks} chunks, {doc.tokens:,} tokens"))
        for error in summary["errors"]:
            print(printable(f"error    {error['path']}: {error['error']}"), file=sys.stderr)
        print(
            f"{summary['documents']} documents, {summary['chunks']} chunks, {summary['tokens']:,} tokens "
            f"in {elapsed:.2f} s ({summary['cached']} from cache)"
        )
    return 1 if result.errors else 0
