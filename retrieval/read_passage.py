"""What Level 2 shows the model of a chunk: the sentences around its query terms, not the whole chunk.

A CPU reads a prompt slowly, so a read's cost is its passage: the windows of the chunk's best-matching
sentences (each with its neighbours), joined by a gap mark, cost a fraction of the chunk. A chunk none of whose
sentences holds a term (a hit's neighbour) shows the sentences at its two ends, where it meets the chunks
around it. Quotes are still verified against the whole chunk, so what the model copies keeps its place.
"""

from __future__ import annotations

from collections.abc import Sequence

from lector.retrieval.focus import sentence_windows
from lector.retrieval.reading_types import Evidence
from lector.retrieval.sentences import sentence_spans
from lector.retrieval.token_estimate import approx_tokens
from lector.retrieval.types import Chunk

GAP = "\n[…]\n"
"""Between two windows of one chunk: text left out."""


def focused_spans(
    chunk: Chunk, terms: Sequence[str], sentences: int, radius: int, max_tokens: int
) -> list[tuple[int, int]]:
    """Spans of `chunk.text` to show: the `sentences` best-matching sentences with `radius` neighbours each,
    fewer while they exceed `max_tokens`; the chunk's end sentences when no sentence holds a term."""
    whole = Evidence.of_chunk(chunk)
    spans: list[tuple[int, int]] = []
    for n in range(max(1, sentences), 0, -1):
        windows = sentence_windows([whole], terms, n, radius)
        if windows == [whole]:  # no sentence holds a term
            return _ends(chunk.text, radius + 1, max_tokens)
        spans = [(w.start - chunk.start, w.end - chunk.start) for w in windows]
        if _tokens(chunk.text, spans) <= max_tokens:
            return spans
    return _cut(chunk.text, spans[:1], max_tokens)


def passage_text(text: str, spans: Sequence[tuple[int, int]]) -> str:
    return GAP.join(text[s:e].strip() for s, e in spans)


def _ends(text: str, count: int, max_tokens: int) -> list[tuple[int, int]]:
    found = sentence_spans(text)
    if len(found) <= 2 * count:
        return _cut(text, [(found[0][0], found[-1][1])] if found else [], max_tokens)
    head = (found[0][0], found[count - 1][1])
    tail = (found[-count][0], found[-1][1])
    if _tokens(text, [head, tail]) <= max_tokens:
        return [head, tail]
    return _cut(text, [head], max_tokens // 2) + _cut(text, [tail], max_tokens // 2, from_end=True)


def _tokens(text: str, spans: Sequence[tuple[int, int]]) -> int:
    return sum(approx_tokens(text[s:e]) for s, e in spans)


def _cut(text: str, spans: list[tuple[int, int]], max_tokens: int, from_end: bool = False) -> list[tuple[int, int]]:
    """The spans, the last one shortened (at a space) until they fit `max_tokens`."""
    if not spans or _tokens(text, spans) <= max_tokens:
        return spans
    s, e = spans[-1]
    share = max_tokens - _tokens(text, spans[:-1])
    keep = max(1, int((e - s) * share / max(1, approx_tokens(text[s:e]))))
    if from_end:
        cut = text.find(" ", e - keep, e)
        return [*spans[:-1], (cut + 1 if 0 <= cut < e - 1 else e - keep, e)]
    cut = text.rfind(" ", s, s + keep)
    return [*spans[:-1], (s, cut if cut > s else s + keep)]
