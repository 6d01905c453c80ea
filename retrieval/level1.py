"""Level 1, retrieve: keywords -> BM25 -> the best chunks packed in document order -> a cited answer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from lector.llm.backend import Backend
from lector.retrieval.answer import (
    Answer,
    Evidence,
    LibraryLike,
    UsageMeter,
    answer_from_evidence,
    grounded,
)
from lector.retrieval.focus import sentence_windows
from lector.retrieval.keywords import KeywordCache, Keywords, detect_languages, generate_keywords
from lector.retrieval.packing import chunk_cost, evidence_budget, pack
from lector.retrieval.types import Hit


class Level1Config(BaseModel):
    k: int = 16
    """BM25 hits considered for packing."""
    answer_reserve: int = 512
    """Tokens of the window kept free for the answer."""
    max_evidence_tokens: int | None = 2000
    """Cap on evidence tokens below what the window allows (about four chunks): small models misread long
    evidence (in bench/eval_needles.py the 1.5B answered NOT FOUND on 3 of 3 needles it had in ~3.3k tokens
    of evidence, and found the one it had in ~1.2k), and a CPU reads ~75 prompt tokens/s. When Level 1
    misses, Auto escalates to Level 2. None uses the whole window."""
    max_answer_tokens: int = 256
    focus_sentences: int | None = 8
    """Show the model only the packed chunks' best-matching sentences (each with one neighbour either side), not
    whole chunks: on the needle dev set the 1.5B answered 1 of 8 from ~1.6k tokens of chunks, and far more
    from ~400 tokens of sentence windows. None shows whole chunks."""
    use_model_keywords: bool = True


def all_doc_ids(library: Any) -> list[str]:
    ids = []
    for doc in library.documents():
        if isinstance(doc, str):
            ids.append(doc)
        elif isinstance(doc, dict):
            ids.append(doc["doc_id"])
        else:
            ids.append(doc.doc_id)
    return ids


def document_languages(library: LibraryLike, doc_ids: Sequence[str] | None) -> list[str]:
    """The documents' languages from a sample of their chunks (start, middle, end)."""
    ids = list(doc_ids) if doc_ids else all_doc_ids(library)
    sample: list[str] = []
    for doc_id in ids[:20]:
        chunks = library.chunks(doc_id)
        if chunks:
            for i in {0, len(chunks) // 2, len(chunks) - 1}:
                sample.append(chunks[i].text[:2000])
    return detect_languages(sample)


async def find_keywords(
    library: LibraryLike,
    backend: Backend,
    question: str,
    doc_ids: Sequence[str] | None,
    meter: UsageMeter,
    cache: KeywordCache | None = None,
    use_model: bool = True,
) -> Keywords:
    from lector.retrieval.keywords import question_terms

    if not use_model:
        terms = question_terms(question) or [question]
        return Keywords(question_terms=terms, fallback=True)
    return await generate_keywords(backend, question, document_languages(library, doc_ids), meter, cache)


async def retrieve_evidence(
    library: LibraryLike,
    backend: Backend,
    question: str,
    hits: Sequence[Hit],
    config: Level1Config,
) -> list[Evidence]:
    budget = evidence_budget(backend, question, config.answer_reserve, config.max_evidence_tokens)
    return pack(hits, budget, chunk_cost(backend))


async def level1(
    library: LibraryLike,
    backend: Backend,
    question: str,
    doc_ids: Sequence[str] | None = None,
    config: Level1Config | None = None,
    meter: UsageMeter | None = None,
    keyword_cache: KeywordCache | None = None,
) -> Answer:
    """Answer `question` from the BM25 top chunks. `details` carries the signals Auto escalates on."""
    config = config or Level1Config()
    meter = meter or UsageMeter()
    started = time.perf_counter()
    ids = list(doc_ids) if doc_ids else None
    keywords = await find_keywords(
        library, backend, question, ids, meter, keyword_cache, config.use_model_keywords
    )
    hits = library.search(keywords.query, k=config.k, doc_ids=ids)
    evidence = await retrieve_evidence(library, backend, question, hits, config)
    if config.focus_sentences:
        evidence = sentence_windows(evidence, keywords.query.split(), config.focus_sentences)
    details: dict[str, Any] = {
        "query": keywords.query,
        "keyword_fallback": keywords.fallback,
        "top_score": hits[0].score if hits else 0.0,
        "evidence": [list(ref) for ref in dict.fromkeys((e.chunk.source, e.chunk.chunk_id) for e in evidence)],
    }
    if not evidence:
        return Answer(
            answer="NOT FOUND: nothing in the documents matches the question.",
            level=1,
            found=False,
            usage=meter.snapshot(),
            elapsed_s=time.perf_counter() - started,
            details={**details, "grounded": False},
        )
    composed = await answer_from_evidence(
        backend, question, evidence, meter, max_tokens=config.max_answer_tokens
    )
    details["grounded"] = composed.found and grounded(composed.text, question, composed.cited)
    return Answer(
        answer=composed.text,
        level=1,
        citations=composed.citations,
        found=composed.found,
        usage=meter.snapshot(),
        elapsed_s=time.perf_counter() - started,
        details=details,
    )
