"""Pack the best chunks into a token budget, then put them back in document order (OP-RAG)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lector.llm.backend import Backend
from lector.retrieval.answer_prompt import prompt_overhead
from lector.retrieval.reading_types import Evidence
from lector.retrieval.types import Chunk, Hit

HEADER_TOKENS = 24
"""Tokens for an evidence item's number and location line."""
SAFETY = 1.05
"""Chunk token counts may be an approximation (within 5% of the model's tokenizer)."""


def chunk_cost(backend: Backend) -> Callable[[Chunk], int]:
    def cost(chunk: Chunk) -> int:
        tokens = chunk.tokens or backend.count_tokens(chunk.text)
        return int(tokens * SAFETY) + HEADER_TOKENS

    return cost


def evidence_budget(
    backend: Backend, question: str, answer_reserve: int = 512, max_evidence_tokens: int | None = None
) -> int:
    """Tokens left for evidence in the model's window after the prompt and the answer's reserve."""
    room = backend.context_size - prompt_overhead(backend, question) - answer_reserve
    if max_evidence_tokens is not None:
        room = min(room, max_evidence_tokens)
    return max(0, room)


def in_document_order(items: Sequence[Evidence], doc_rank: dict[str, int]) -> list[Evidence]:
    """Documents in `doc_rank` order (most relevant first), chunks in reading order within each."""
    return sorted(items, key=lambda e: (doc_rank.get(e.chunk.doc_id, 1 << 30), e.chunk.doc_id, e.start))


def trim_overlaps(items: Sequence[Evidence]) -> list[Evidence]:
    """Drop text an item repeats from the previous item of the same document (chunks overlap a little)."""
    out: list[Evidence] = []
    for item in items:
        prev = out[-1] if out else None
        if prev is not None and prev.chunk.doc_id == item.chunk.doc_id and item.start < prev.end < item.end:
            cut = prev.end - item.start
            item = Evidence(
                chunk=item.chunk,
                text=item.text[cut:],
                start=prev.end,
                end=item.end,
                score=item.score,
                quotes=item.quotes,
            )
        elif prev is not None and prev.chunk.doc_id == item.chunk.doc_id and item.end <= prev.end:
            continue
        out.append(item)
    return out


def pack(hits: Sequence[Hit], budget: int, cost: Callable[[Chunk], int]) -> list[Evidence]:
    """The best-ranked hits that fit `budget` tokens, returned in document order."""
    chosen: list[Evidence] = []
    seen: set[tuple[str, int]] = set()
    used = 0
    doc_rank: dict[str, int] = {}
    for hit in sorted(hits, key=lambda h: h.rank):
        key = (hit.chunk.doc_id, hit.chunk.chunk_id)
        if key in seen:
            continue
        need = cost(hit.chunk)
        if used + need > budget:
            continue
        seen.add(key)
        used += need
        doc_rank.setdefault(hit.chunk.doc_id, len(doc_rank))
        chosen.append(Evidence.of_chunk(hit.chunk, hit.score))
    return trim_overlaps(in_document_order(chosen, doc_rank))


def pack_chunks(chunks: Sequence[Chunk], budget: int, cost: Callable[[Chunk], int]) -> list[Evidence] | None:
    """Every chunk in order, or None when they do not all fit (the 'direct' level)."""
    if sum(cost(c) for c in chunks) > budget:
        return None
    return trim_overlaps([Evidence.of_chunk(c) for c in chunks])
