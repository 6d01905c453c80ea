"""What the model's keyword call buys Level 1, where it is made.

Level 1 skips the call when the question's own words find their place (`retrieval.own_terms.found_together`).
For every question of the chosen sets where they do not, this bench asks the model for keywords once
(`generate_keywords`) and compares, with the question's own terms against the model's keywords added:

  evidence   the gold line inside what Level 1 would show the model (its packing and sentence focus)
  recall@8   the gold line inside the 8 best chunks

and reports the seconds and completion tokens the keyword calls took. Sets: bench/dense_rerank.py's reworded
questions and bench/real_sets.py's sets.

    flock /tmp/lector-model.lock .venv/bin/python -m bench.keyword_value --sets reworded-brown,reworded-linux
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from typing import Any

from bench.dense_rerank import question_sets
from bench.eval_real import covered, gold_spans


def shown(library: Any, doc_id: str, question: str, keywords: Any) -> tuple[list[tuple[int, int]], list[Any]]:
    """The spans of what Level 1 shows the model for `keywords`, and its 8 best hits."""
    from lector.retrieval.focus import quoting, sentence_windows
    from lector.retrieval.level1 import Level1Config
    from lector.retrieval.packing import HEADER_TOKENS, pack
    from lector.retrieval.pointers import with_defining_lines

    config = Level1Config()
    hits = library.search(keywords.query, k=config.k, doc_ids=[doc_id])
    packed = pack(hits, config.max_evidence_tokens or 2000, lambda c: c.tokens + HEADER_TOKENS)
    radius = 2 if keywords.phrases else 1
    windows = sentence_windows(packed, keywords.focus_terms, config.focus_sentences or 8, radius=radius)
    evidence = with_defining_lines(question, quoting(windows, keywords.phrases), packed)
    return [(e.start, e.end) for e in evidence], hits[:8]


async def run(set_names: list[str], seed: int) -> list[dict[str, Any]]:
    from lector.llm.factory import make_backend
    from lector.retrieval.keywords import KeywordCache, generate_keywords, question_keywords
    from lector.retrieval.library import Library
    from lector.retrieval.own_terms import found_together
    from lector.retrieval.reading_types import UsageMeter

    backend = make_backend(None, n_ctx=8192, n_parallel=2)
    rows: list[dict[str, Any]] = []
    try:
        for qset in question_sets(set_names, seed):
            library = Library(cache_dir=tempfile.mkdtemp(prefix="keyword-value-"))
            doc_id = library.add_text(qset.text, qset.source)
            for q in qset.questions:
                own = question_keywords(q.question)
                if found_together(library, own, [doc_id]):
                    continue
                meter = UsageMeter()
                started = time.perf_counter()
                model = await generate_keywords(backend, q.question, ["en"], meter=meter, cache=KeywordCache())
                row: dict[str, Any] = {
                    "set": qset.name,
                    "qid": q.qid,
                    "added": model.keywords,
                    "seconds": time.perf_counter() - started,
                    "completion_tokens": meter.snapshot().completion_tokens,
                }
                spans = gold_spans(qset.text, q)
                for label, keywords in (("own", own), ("model", model)):
                    evidence, top8 = shown(library, doc_id, q.question, keywords)
                    row[f"{label}_evidence"] = covered(spans, evidence)
                    row[f"{label}_recall8"] = covered(spans, [(h.chunk.start, h.chunk.end) for h in top8])
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    finally:
        backend.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| set | calls | evidence own → model | recall@8 own → model | s/call | completion tok/call |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["set"] for r in rows):
        rs = [r for r in rows if r["set"] == name]
        n = len(rs)

        def total(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return sum(r[key] for r in rs)

        lines.append(
            f"| {name} | {n} | {total('own_evidence'):.0f} → {total('model_evidence'):.0f} | "
            f"{total('own_recall8'):.0f} → {total('model_recall8'):.0f} | {total('seconds') / n:.1f} | "
            f"{total('completion_tokens') / n:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="reworded-brown,reworded-linux")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    rows = asyncio.run(run(args.sets.split(","), args.seed))
    print(table(rows) if rows else "the own-terms rule fires on every question: no keyword call to weigh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
