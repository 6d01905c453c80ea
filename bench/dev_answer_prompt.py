"""Compare answer-from-evidence prompt variants on a fixed needle dev set (Level 1 evidence, computed once).

    .venv/bin/python bench/dev_answer_prompt.py --variants base --tokens 24000 --questions 8

Evidence per question (model keywords -> BM25 -> packed chunks) is cached in --cache, so each variant costs one
answer call per question.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))


async def build(args: argparse.Namespace, backend: Any) -> list[tuple[Any, list[Any]]]:
    import eval_needles as en

    from lector.retrieval.answer import UsageMeter
    from lector.retrieval.level1 import Level1Config, find_keywords, retrieve_evidence
    from lector.retrieval.library import Library

    rng = random.Random(args.seed)
    questions = en.make_questions(rng, args.questions, 0)
    size_rng = random.Random(f"{args.seed}-dev")
    text = en.place(en.haystack(args.tokens, size_rng), questions, size_rng)
    library = Library(cache_dir=tempfile.mkdtemp(prefix="devans-"))
    doc_id = library.add_text(text, "haystack.txt")
    config = Level1Config()
    out = []
    for q in questions:
        kw = await find_keywords(library, backend, q.question, [doc_id], UsageMeter(), use_model=False)
        hits = library.search(kw.query, k=config.k, doc_ids=[doc_id])
        evidence = await retrieve_evidence(library, backend, q.question, hits, config)
        has = en.covered(q.spans, [(e.start, e.end) for e in evidence])
        print(f"{q.qid} evidence {len(evidence)} items, needle inside: {bool(has)}", file=sys.stderr)
        out.append((q, evidence, kw.query))
    return out


async def main_async(args: argparse.Namespace) -> None:
    import eval_needles as en

    from lector.llm.factory import make_backend
    from lector.retrieval import answer as ans

    backend = make_backend(args.model, n_ctx=8192, n_parallel=1, n_threads=args.threads)
    cache = Path(args.cache)
    if cache.exists():
        data = pickle.loads(cache.read_bytes())
    else:
        data = await build(args, backend)
        cache.write_bytes(pickle.dumps(data))
    for variant in args.variants.split(","):
        ok = 0
        secs = 0.0
        for q, evidence, query in data:
            meter = ans.UsageMeter()
            started = time.perf_counter()
            if variant == "pjson":
                import json

                from lector.llm.backend import ChatOptions
                from lector.retrieval.focus import sentence_windows

                focused = sentence_windows(evidence, query.split(), args.sentences)
                schema = {"type": "object", "properties": {
                    "answer": {"type": "string"}, "evidence": {"type": "array", "items": {"type": "integer"}}},
                    "required": ["answer", "evidence"]}
                msgs = ans.answer_messages(q.question, focused)
                msgs[-1].content += ' Reply as JSON: {"answer": ..., "evidence": [numbers]}.'
                result = await meter.chat(backend, msgs, ChatOptions(temperature=0.0, max_tokens=256,
                                                                     json_schema=schema))
                try:
                    d = json.loads(result.message.content)
                    text = f"{d['answer']} " + "".join(f"[{n}]" for n in d["evidence"])
                except (ValueError, KeyError, TypeError):
                    text = result.message.content
                composed = ans.compose(text, focused, question=q.question)
            elif variant == "prod":
                from lector.retrieval.focus import sentence_windows

                focused = sentence_windows(evidence, query.split(), args.sentences)
                composed = await ans.answer_from_evidence(backend, q.question, focused, meter)
            elif variant == "cur":
                composed = await ans.answer_from_evidence(backend, q.question, evidence, meter)
            else:
                import dev_variants

                composed = await dev_variants.run(variant, backend, q.question, evidence, query, meter)
            secs += time.perf_counter() - started
            good = en.correct(composed.text, q.answer)
            ok += good
            print(f"  {variant} {q.qid} {'OK ' if good else 'BAD'} exp={q.answer!r} "
                  f"got={composed.text[:100]!r} ptok={meter.usage.prompt_tokens}", file=sys.stderr, flush=True)
        print(f"{variant}: {ok}/{len(data)} correct, {secs / len(data):.1f} s/q", flush=True)
    backend.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", default="cur")
    p.add_argument("--tokens", type=int, default=24000)
    p.add_argument("--questions", type=int, default=8)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sentences", type=int, default=8)
    p.add_argument("--cache", default="/tmp/dev/evidence.pkl")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
