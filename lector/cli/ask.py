"""`lector ask PATH… -q Q [--level auto|direct|0|1|2|3] [--json] [--model SPEC]`.

--json prints exactly:
    {"answer", "level", "citations": [{"source", "chunk_id", "start", "end", "page", "text"}],
     "usage": {"llm_calls", "prompt_tokens", "completion_tokens"}, "elapsed_s"}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from lector.cli.status_line import PromptShown, StatusLine, passages_text
from lector.cli.threads_option import add_threads_option, apply_threads
from lector.retrieval.levels import Level, parse_level

if TYPE_CHECKING:
    from lector.retrieval.reading_types import Answer, LibraryLike


def register(subparsers: Any) -> None:
    ask = subparsers.add_parser(
        "ask",
        help="answer a question over documents, with citations",
        description="Answer a question over one or more documents with citations. Level auto answers "
        "small documents directly, else retrieves (1), reads (2) or reasons stepwise (3) as needed.",
    )
    ask.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are walked)")
    ask.add_argument("-q", "--question", required=True, help="the question")
    ask.add_argument("--level", default=Level.AUTO, type=_level, metavar="{auto,direct,0,1,2,3}", help="reading level")
    ask.add_argument("--json", action="store_true", help="print the stable JSON format")
    ask.add_argument(
        "--show-reading", dest="verbose_reading", action="store_true", help="print each chunk Level 2 reads (to stderr)"
    )
    ask.add_argument("--model", default=None, help="model spec (default $LECTOR_MODEL or the embedded 1.5B)")
    ask.add_argument("--cache-dir", default=None, help="cache folder (default $LECTOR_CACHE or ~/.cache/lector)")
    add_threads_option(ask)
    ask.set_defaults(func=run_ask)


def _level(text: str) -> Level:
    try:
        return parse_level(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _ask(args: argparse.Namespace, library: LibraryLike, doc_ids: list[str]) -> Answer:
    from lector.agent.reader import ask_events
    from lector.agent.stepwise import AnswerReady, ChunkRead, LevelChosen, PassagesReading, SubAnswer, SubQuestion
    from lector.llm.factory import make_backend

    backend = make_backend(args.model)
    status = StatusLine(sys.stderr, on=not args.json and sys.stderr.isatty(), started=time.monotonic(), tick=0.5)
    try:
        answer: Answer | None = None
        steps = 0  # the sub-question being read, if any
        shown = PromptShown(backend, status)
        status.show("looking for the answer…")
        async for event in ask_events(library, args.question, args.level, shown, doc_ids=doc_ids):
            if isinstance(event, PassagesReading):
                sub = f"sub-question {steps}: " if steps else ""
                status.show(sub + passages_text(event.first, event.last, event.total, event.sources))
                continue
            if not isinstance(event, ChunkRead) or args.verbose_reading:
                status.clear()
            if isinstance(event, AnswerReady):
                answer = event.answer
            elif args.json:
                continue
            elif isinstance(event, LevelChosen):
                _say(f"level {event.level}: {event.reason}")
                status.show(f"reading at level {int(event.level)}…")
            elif isinstance(event, SubQuestion):
                _say(f"  sub-question {event.index}: {event.question}")
                steps = event.index
                status.show(f"sub-question {event.index}: reading…")
            elif isinstance(event, SubAnswer):
                _say(f"  answer {event.index}: {event.answer}")
                steps = 0
                status.show("planning the next step…")
            elif isinstance(event, ChunkRead) and args.verbose_reading:
                _say(f"    read {event.source} chunk {event.chunk_id}: {len(event.quotes)} verified quotes")
        if answer is None:
            raise RuntimeError("the reader finished without an answer")
        return answer
    finally:
        status.close()
        backend.close()


def run_ask(args: argparse.Namespace) -> int:
    from lector.retrieval.library import Library

    apply_threads(args)
    library = Library(cache_dir=args.cache_dir)
    result = library.add_paths(args.paths, progress=not args.json and sys.stderr.isatty())
    for path, error in result.errors.items():
        print(f"error: {path}: {error}", file=sys.stderr)
    if not result.doc_ids:
        return 1
    answer = asyncio.run(_ask(args, library, result.doc_ids))
    if args.json:
        print(json.dumps(answer.to_json_dict(), ensure_ascii=False))
        return 0
    print(answer.answer)
    if answer.citations:
        print()
    for i, c in enumerate(answer.citations, 1):
        page = f", page {c.page}" if c.page is not None else ""
        snippet = " ".join(c.text.split())
        snippet = snippet[:240] + ("…" if len(snippet) > 240 else "")
        print(f"[{i}] {c.source}, chunk {c.chunk_id}{page} [{c.start}:{c.end}]: {snippet}")
    u = answer.usage
    _say(
        f"(level {answer.level}; {u.llm_calls} model calls, {u.prompt_tokens} prompt + "
        f"{u.completion_tokens} completion tokens; {answer.elapsed_s:.1f} s)"
    )
    return 0
