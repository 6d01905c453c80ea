"""`lector search PATH… -q Q -k K [--json]`.

search --json prints exactly:
    {"results": [{"rank", "score", "source", "chunk_id", "start", "end", "page", "text", "sentence"}], "elapsed_ms"}
`sentence` is the sentence(s) of the chunk that match the query best (retrieval/snippets.py); the text output
shows them, with the matching words in bold on a terminal.
Indexes are cached by content hash ($LECTOR_CACHE or ~/.cache/lector), so a second search on the same
file loads its index instead of rebuilding it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from lector.cli.library_options import add_library_options, library_from
from lector.cli.terminal import printable
from lector.retrieval.snippets import Snippet, snippet

BOLD, PLAIN = "\x1b[1m", "\x1b[22m"


def register(subparsers: Any) -> None:
    search = subparsers.add_parser(
        "search",
        help="BM25 search over documents",
        description="Search one or more documents together with BM25 and print the best chunks.",
    )
    search.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are walked)")
    search.add_argument("-q", "--query", required=True, help="the search query")
    search.add_argument("-k", type=int, default=5, help="how many chunks to return (default 5)")
    search.add_argument("--json", action="store_true", help="print the stable JSON format")
    add_library_options(search)
    search.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    library = library_from(args)
    started = time.perf_counter()
    result = library.add_paths(args.paths, progress=not args.json and sys.stderr.isatty())
    for path, error in result.errors.items():
        print(printable(f"error: {path}: {error}"), file=sys.stderr)
    if not library.documents():
        return 1
    search_started = time.perf_counter()
    hits = library.search(args.query, k=args.k)
    elapsed_ms = (time.perf_counter() - search_started) * 1000
    if args.json:
        results = [
            {
                "rank": h.rank,
                "score": round(h.score, 4),
                "source": h.chunk.source,
                "chunk_id": h.chunk.chunk_id,
                "start": h.chunk.start,
                "end": h.chunk.end,
                "page": h.chunk.page,
                "text": h.chunk.text,
                "sentence": snippet(h.chunk.text, args.query).text,
            }
            for h in hits
        ]
        print(json.dumps({"results": results, "elapsed_ms": round(elapsed_ms, 3)}, ensure_ascii=False))
        return 1 if result.errors else 0
    total_ms = (time.perf_counter() - started) * 1000
    bold = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if not hits:
        print("no results")
    for h in hits:
        where = f"p.{h.chunk.page} " if h.chunk.page is not None else ""
        where += f"§ {h.chunk.section} " if h.chunk.section else ""
        span = f"[{h.chunk.start}:{h.chunk.end}]"
        print(printable(f"#{h.rank}  {h.score:.3f}  {h.chunk.source} chunk {h.chunk.chunk_id} {where}{span}"))
        print(f"    {shown(snippet(h.chunk.text, args.query), bold)}")
    print(f"({elapsed_ms:.1f} ms search, {total_ms:.0f} ms with loading)", file=sys.stderr)
    return 1 if result.errors else 0


def shown(found: Snippet, bold: bool) -> str:
    """The snippet for a terminal: control characters made visible, matching words in bold when `bold`."""
    return "".join(f"{BOLD}{printable(p)}{PLAIN}" if hit and bold else printable(p) for p, hit in found.parts)
