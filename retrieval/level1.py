"""Level 1, retrieve: keywords -> BM25 -> the best chunks packed in document order -> a cited answer."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import BaseModel

from lector.retrieval.answer_prompt import answer_from_evidence
from lector.retrieval.context import ReadingContext
from lector.retrieval.focus import quoting, sentence_windows
from lector.retrieval.keywords import Keywords, detect_languages, generate_keywords, question_keywords
from lector.retrieval.levels import Level
from lector.retrieval.own_terms import found_together, same_language
from lector.retrieval.packing import chunk_cost, evidence_budget, pack
from lector.retrieval.pointers import with_defining_lines
from lector.retrieval.reading_types import Answer, LibraryLike, chunk_refs


class Level1Config(BaseModel):
    k: int = 16
    """BM25 hits considered for packing."""
    answer_reserve: int = 512
    """Tokens of the window kept free for the answer."""
    max_evidence_tokens: int | None = 2000
    """Cap on evidence tokens below what the window allows (about four chunks): small models misread long
    evidence (bench/eval_needles.py measures it) and a CPU reads prompts slowly. When Level 1 misses, Auto
    escalates to Level 2. None uses the whole window."""
    max_answer_tokens: int = 256
    focus_sentences: int | None = 8
    """Show the model only the packed chunks' best-matching sentences (each with one neighbour either side), not
    whole chunks: a small model finds an answer in a few short windows that it misses in the chunks around them.
    None shows whole chunks."""
    use_model_keywords: bool = True


def document_languages(library: LibraryLike, doc_ids: Sequence[str]) -> list[str]:
    """The documents' languages from a sample of their chunks (start, middle, end)."""
    sample: list[str] = []
    for doc_id in doc_ids[:20]:
        chunks = library.chunks(doc_id)
        if chunks:
            for i in {0, len(chunks) // 2, len(chunks) - 1}:
                sample.append(chunks[i].text[:2000])
    return detect_languages(sample)


async def find_keywords(ctx: ReadingContext, question: str, use_model: bool = True) -> Keywords:
    """The model's keywords in the documents' languages, or only the question's own terms: without the model, or
    where those terms already find a chunk that holds them all, in documents written in the question's language
    (`retrieval.own_terms`)."""
    own = question_keywords(question)
    if not use_model:
        return own
    languages = document_languages(ctx.library, ctx.document_ids())
    if same_language(question, languages) and found_together(ctx.library, own, ctx.doc_ids):
        return own
    return await generate_keywords(ctx.backend, question, languages, ctx.meter, ctx.keyword_cache)


async def level1(ctx: ReadingContext, question: str, config: Level1Config | None = None) -> Answer:
    """Answer `question` from the BM25 top chunks; `grounded` and `top_score` are what Auto escalates on."""
    config = config or Level1Config()
    started = time.perf_counter()
    keywords = await find_keywords(ctx, question, config.use_model_keywords)
    hits = ctx.library.search(keywords.query, k=config.k, doc_ids=ctx.doc_ids)
    budget = evidence_budget(ctx.backend, question, config.answer_reserve, config.max_evidence_tokens)
    packed = pack(hits, budget, chunk_cost(ctx.backend))
    evidence = packed
    if config.focus_sentences:
        radius = 2 if keywords.phrases else 1  # who speaks or writes a quoted line is often named lines before it
        evidence = quoting(
            sentence_windows(packed, keywords.focus_terms, config.focus_sentences, radius=radius), keywords.phrases
        )
        evidence = with_defining_lines(question, evidence, packed)
    top_score = hits[0].score if hits else 0.0
    details = {
        "query": keywords.query,
        "keyword_fallback": keywords.fallback,
        "evidence": chunk_refs(evidence),
    }
    if not evidence:
        return Answer.nothing_found(
            Level.RETRIEVE, ctx.meter.snapshot(), time.perf_counter() - started, top_score=top_score, details=details
        )
    composed = await answer_from_evidence(
        ctx.backend, question, evidence, ctx.meter, max_tokens=config.max_answer_tokens
    )
    return composed.to_answer(
        Level.RETRIEVE,
        ctx.meter.snapshot(),
        elapsed_s=time.perf_counter() - started,
        top_score=top_score,
        details=details,
    )
