"""`lector index PATH…` and `lector search PATH… -q Q -k K [--json]`.

search --json prints exactly:
    {"results": [{"rank", "score", "source", "chunk_id", "start", "end", "page", "text"}], "elapsed_ms"}
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


def register(subparsers: Any) -> None:
    index = subparsers.add_parser(
        "index",
        help="parse, chunk and index documents into the cache",
        description="Parse, chunk and BM25-index documents (txt md html pdf docx pptx csv tsv xlsx) "
        "into the on-disk cache.",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are walked)")
    _common(index)
    index.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    index.set_defaults(func=run_index)

    search = subparsers.add_parser(
        "search",
        help="BM25 search over documents",
        description="Search one or more documents together with BM25 and print the best chunks.",
    )
    search.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are walked)")
    search.add_argument("-q", "--query", required=True, help="the search query")
    search.add_argument("-k", type=int, default=5, help="how many chunks to return (default 5)")
    search.add_argument("--json", action="store_true", help="print the stable JSON format")
    _common(search)
    search.set_defaults(func=run_search)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None, help="cache folder (default $LECTOR_CACHE or ~/.cache/lector)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--chunk-tokens", type=int, default=512, help="target chunk size in tokens (default 512)")


def expand_paths(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        else:
            out.append(path)
    return out


def _library(args: argparse.Namespace) -> Any:
    from retrieval.library import Library

    return Library(cache_dir=args.cache_dir, use_cache=not args.no_cache, target_tokens=args.chunk_tokens)


def run_index(args: argparse.Namespace) -> int:
    library = _library(args)
    paths = expand_paths(args.paths)
    started = time.perf_counter()
    result = library.add_files(paths, progress=not args.json and sys.stderr.isatty())
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
            print(f"{state:8} {doc.source}: {doc.chunks} chunks, {doc.tokens:,} tokens")
        for error in summary["errors"]:
            print(f"error    {error['path']}: {error['error']}", file=sys.stderr)
        print(
            f"{summary['documents']} documents, {summary['chunks']} chunks, {summary['tokens']:,} tokens "
            f"in {elapsed:.2f} s ({summary['cached']} from cache)"
        )
    return 1 if result.errors and not docs else 0


def run_search(args: argparse.Namespace) -> int:
    library = _library(args)
    paths = expand_paths(args.paths)
    started = time.perf_counter()
    result = library.add_files(paths, progress=not args.json and sys.stderr.isatty())
    for path, error in result.errors.items():
        print(f"error: {path}: {error}", file=sys.stderr)
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
            }
            for h in hits
        ]
        print(json.dumps({"results": results, "elapsed_ms": round(elapsed_ms, 3)}, ensure_ascii=False))
        return 0
    total_ms = (time.perf_counter() - started) * 1000
    if not hits:
        print("no results")
    for h in hits:
        where = f"p.{h.chunk.page} " if h.chunk.page is not None else ""
        where += f"§ {h.chunk.section} " if h.chunk.section else ""
        span = f"[{h.chunk.start}:{h.chunk.end}]"
        print(f"#{h.rank}  {h.score:.3f}  {h.chunk.source} chunk {h.chunk.chunk_id} {where}{span}")
        snippet = " ".join(h.chunk.text.split())
        print(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    print(f"({elapsed_ms:.1f} ms search, {total_ms:.0f} ms with loading)", file=sys.stderr)
    return 0
