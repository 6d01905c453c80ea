"""Cut a parsed document into chunks of about `target_tokens`, at the strongest boundary available:
a page/section change, then a paragraph (blank line), a sentence end (English or Chinese punctuation),
a line end, and only as a last resort inside a sentence. Consecutive chunks overlap by whole sentences
worth at most `overlap_tokens`. Every chunk's text is exactly `doc.text[chunk.start:chunk.end]`.

Token counts default to `approx_tokens`, a linear model over character classes fitted to the
Qwen2.5 tokenizer (bench/token_calibration.py measures it; tests/retrieval/test_chunking.py checks it
stays within 5% when that tokenizer is available offline).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from retrieval.parsers import ParsedDocument
from retrieval.token_estimate import approx_tokens, cumulative_at
from retrieval.types import Chunk

__all__ = ["chunk_document", "chunk_with_total", "approx_tokens", "CHUNKER_VERSION"]

CHUNKER_VERSION = "1"


class _Unit(NamedTuple):
    start: int
    end: int
    strength: int
    """How good a cut after this unit is: 4 page/section change, 3 paragraph, 2 sentence, 1 line, 0 none."""


_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_SENTENCE = re.compile(r"[.!?][\"'”’)\]]*(?=\s)")
_SENTENCE_CJK = re.compile(r"[。！？；…][”’」』）)]*")
_LINE = re.compile(r"\n")


def _units(text: str, breaks: set[int]) -> list[tuple[int, int, int]]:
    """Non-blank spans of text, with the strength of the boundary after each."""
    cuts: dict[int, int] = {}
    for pattern, strength in ((_LINE, 1), (_SENTENCE, 2), (_SENTENCE_CJK, 2), (_PARAGRAPH, 3)):
        for m in pattern.finditer(text):
            cuts[m.end()] = strength if strength > cuts.get(m.end(), 0) else cuts[m.end()]
    for b in breaks:
        if 0 < b < len(text):
            cuts[b] = 4
    cuts[len(text)] = 4
    pieces: list[tuple[int, int, int]] = []
    start = 0
    for end in sorted(cuts):
        strength = cuts[end]
        s, e = start, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            pieces.append((s, e, strength))
        elif pieces and strength > pieces[-1][2]:
            pieces[-1] = (pieces[-1][0], pieces[-1][1], strength)
        start = end
    return pieces


def _split_long(text: str, unit: tuple[int, int, int], tokens: float, limit: int) -> list[tuple[int, int, int]]:
    """Cut a unit longer than `limit` tokens into windows, preferring whitespace."""
    start, end, strength = unit
    chars_per_token = (end - start) / max(tokens, 1)
    window = max(16, int(limit * chars_per_token * 0.9))
    out: list[tuple[int, int, int]] = []
    pos = start
    while end - pos > window:
        cut = pos + window
        space = text.rfind(" ", pos + window // 2, cut)
        if space > pos:
            cut = space + 1
        piece_end = cut
        while piece_end > pos and text[piece_end - 1].isspace():
            piece_end -= 1
        out.append((pos, piece_end, 0))
        pos = cut
        while pos < end and text[pos].isspace():
            pos += 1
    if pos < end:
        out.append((pos, end, strength))
    return out


def chunk_document(
    doc: ParsedDocument,
    target_tokens: int = 512,
    overlap_tokens: int = 48,
    count_tokens: Callable[[str], int] | None = None,
) -> list[Chunk]:
    return chunk_with_total(doc, target_tokens, overlap_tokens, count_tokens)[0]


def chunk_with_total(
    doc: ParsedDocument,
    target_tokens: int = 512,
    overlap_tokens: int = 48,
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[list[Chunk], int]:
    """The chunks and the (estimated) token count of the whole document."""
    text = doc.text
    breaks = {seg.start for seg in doc.segments}
    raw_units = _units(text, breaks)
    if not raw_units:
        return [], 0
    if count_tokens is None:
        edges = np.array([p for u in raw_units for p in (u[0], u[1])], dtype=np.int64)
        at = dict(zip(edges.tolist(), cumulative_at(text, edges).tolist(), strict=True))

        def count(a: int, b: int) -> float:
            if a in at and b in at:
                return at[b] - at[a]
            return float(approx_tokens(text[a:b]))
    else:
        counter = count_tokens

        def count(a: int, b: int) -> float:
            return float(counter(text[a:b]))

    units: list[_Unit] = []
    sizes: list[float] = []
    for raw in raw_units:
        n = count(raw[0], raw[1])
        if n > target_tokens:
            for piece in _split_long(text, raw, n, target_tokens):
                units.append(_Unit(*piece))
                sizes.append(count(piece[0], piece[1]))
        else:
            units.append(_Unit(*raw))
            sizes.append(n)
    # prefix[i]: tokens before unit i, counting the whitespace between units (line breaks cost tokens)
    prefix = [0.0]
    for i, size in enumerate(sizes[:-1]):
        gap = count(units[i].end, units[i + 1].start) if units[i + 1].start > units[i].end else 0.0
        prefix.append(prefix[-1] + size + gap)
    prefix.append(prefix[-1] + sizes[-1])

    chunks: list[Chunk] = []
    first = 0
    min_fill = target_tokens // 2
    while first < len(units):
        last = first
        while last + 1 < len(units) and prefix[last + 2] - prefix[first] <= target_tokens:
            last += 1
        if last + 1 < len(units):
            last = _best_cut(units, prefix, first, last, min_fill)
        start, end = units[first].start, units[last].end
        page, section = doc.location(start)
        chunks.append(
            Chunk(
                doc_id=doc.doc_id,
                source=doc.source,
                chunk_id=len(chunks),
                start=start,
                end=end,
                page=page,
                section=section,
                text=text[start:end],
                tokens=round(prefix[last + 1] - prefix[first]),
            )
        )
        if last + 1 >= len(units):
            break
        nxt = last + 1
        if units[last].strength < 4:
            while nxt - 1 > first and prefix[last + 1] - prefix[nxt - 1] <= overlap_tokens:
                nxt -= 1
        first = nxt
    return chunks, round(prefix[-1])


def _best_cut(units: list[_Unit], prefix: list[float], first: int, last: int, min_fill: int) -> int:
    """The unit to end the chunk on: the strongest boundary past min_fill tokens, the latest among equals."""
    best = last
    best_strength = units[last].strength
    for i in range(last - 1, first - 1, -1):
        if prefix[i + 1] - prefix[first] < min_fill:
            break
        if units[i].strength > best_strength:
            best, best_strength = i, units[i].strength
    return best
