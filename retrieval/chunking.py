"""Cut a parsed document into chunks of about `target_tokens`, at the strongest boundary available:
a section change, then a paragraph (blank line), a sentence end (English or Chinese punctuation),
a line end, and only as a last resort inside a sentence. A page change (PDF page, slide, sheet) is
always cut, so every chunk lies on one page and its `page` is exact. Consecutive chunks overlap by whole sentences
worth at most `overlap_tokens`. Every chunk's text is exactly `doc.text[chunk.start:chunk.end]`.

Token counts default to `approx_tokens`, a linear model over character classes fitted to the
Qwen2.5 tokenizer (bench/token_calibration.py measures it; tests/retrieval/test_chunking.py checks it
stays within 5% when that tokenizer is available offline).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable

import numpy as np

from lector.retrieval.parsers import ParsedDocument
from lector.retrieval.sentences import CJK_SENTENCE_END_MARKS, CLOSING_MARKS, SENTENCE_END_MARKS
from lector.retrieval.token_estimate import approx_tokens, cumulative_at
from lector.retrieval.types import Chunk

__all__ = ["chunk_document", "chunk_with_total", "approx_tokens", "CHUNKER_VERSION"]

CHUNKER_VERSION = "3"


_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")


def _table(chars: str) -> np.ndarray:
    table = np.zeros(0x10000, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


_ENDERS = _table(SENTENCE_END_MARKS)
_CJK_ENDERS = _table(CJK_SENTENCE_END_MARKS)
_CLOSERS = _table(CLOSING_MARKS)
_SPACE_TABLE = np.array([chr(i).isspace() for i in range(0x10000)], dtype=bool)

# strengths of the boundary after a unit
NONE, LINE, SENTENCE, PARAGRAPH, SEGMENT, PAGE = range(6)
"""A section change is the preferred cut; a page change is always cut, so a chunk has one page."""


def _units(text: str, breaks: set[int], page_breaks: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends and boundary strengths of the non-blank spans between candidate cuts (numpy)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    n = codes.size
    astral = n > 0 and int(codes.max()) > 0xFFFF
    bmp = np.minimum(codes, 0xFFFF) if astral else codes  # astral characters: neither space nor punctuation
    space = np.ones(n + 1, dtype=bool)  # one past the end counts as space
    space[:n] = _SPACE_TABLE[bmp]
    if astral:
        space[:n] &= codes <= 0xFFFF
    ender, closer, cjk_ender, newline = _ENDERS[bmp], _CLOSERS[bmp], _CJK_ENDERS[bmp], codes == 10
    del codes, bmp
    after_closer = np.zeros(n, dtype=bool)
    after_closer[:-1] = closer[1:]
    # sentence ends: . ! ? (and closing quotes) before whitespace; Chinese enders anywhere
    western = np.flatnonzero(ender & space[1:])
    quoted = np.flatnonzero(closer[1:] & ender[:-1] & space[2:]) + 1 if n > 1 else np.zeros(0, dtype=np.int64)
    cjk = np.flatnonzero(cjk_ender)
    cjk = cjk + 1 + after_closer[cjk]
    parts = [
        (np.flatnonzero(newline) + 1, LINE),
        (western + 1, SENTENCE),
        (quoted + 1, SENTENCE),
        (cjk, SENTENCE),
        (np.fromiter((m.end() for m in _PARAGRAPH.finditer(text)), dtype=np.int64), PARAGRAPH),
        (np.array(sorted(b for b in breaks if 0 < b < n), dtype=np.int64), SEGMENT),
        (np.array(sorted(b for b in page_breaks if 0 < b < n) + [n], dtype=np.int64), PAGE),
    ]
    positions = np.concatenate([p.astype(np.int64) for p, _ in parts])
    strengths = np.concatenate([np.full(len(p), s, dtype=np.int8) for p, s in parts])
    order = np.lexsort((-strengths, positions))
    positions, strengths = positions[order], strengths[order]
    first = np.r_[True, positions[1:] != positions[:-1]]
    cut_ends, cut_strengths = positions[first], strengths[first]
    cut_starts = np.r_[0, cut_ends[:-1]]
    # strip the whitespace at both ends of every piece
    solid = np.flatnonzero(~space[:n])
    if solid.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int8)
    i = np.searchsorted(solid, cut_starts)
    starts = np.where(i < solid.size, solid[np.minimum(i, solid.size - 1)], n)
    j = np.searchsorted(solid, cut_ends) - 1
    ends = np.where(j >= 0, solid[np.maximum(j, 0)] + 1, 0)
    valid = ends > starts
    # a blank piece passes its boundary strength to the unit before it
    owner = np.maximum.accumulate(np.where(valid, np.arange(valid.size), -1))
    blank = ~valid & (owner >= 0)
    np.maximum.at(cut_strengths, owner[blank], cut_strengths[blank])
    return starts[valid], ends[valid], cut_strengths[valid]


def _split_long(text: str, start: int, end: int, tokens: float, limit: int) -> list[tuple[int, int]]:
    """Cut a span longer than `limit` tokens into windows, preferring whitespace."""
    chars_per_token = (end - start) / max(tokens, 1)
    window = max(16, int(limit * chars_per_token * 0.9))
    out: list[tuple[int, int]] = []
    pos = start
    while end - pos > window:
        cut = pos + window
        space = text.rfind(" ", pos + window // 2, cut)
        if space > pos:
            cut = space + 1
        piece_end = cut
        while piece_end > pos and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > pos:
            out.append((pos, piece_end))
        pos = cut
        while pos < end and text[pos].isspace():
            pos += 1
    if pos < end:
        out.append((pos, end))
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
    page_breaks = {b.start for a, b in zip(doc.segments, doc.segments[1:], strict=False) if a.page != b.page}
    starts, ends, strengths = _units(text, {seg.start for seg in doc.segments}, page_breaks)
    if starts.size == 0:
        return [], 0
    before, after = _token_positions(text, starts, ends, count_tokens)
    long_units = np.flatnonzero(after - before > target_tokens)
    if long_units.size:  # rare: a paragraph with no sentence or line break, e.g. minified text
        starts, ends, strengths = _split_units(text, starts, ends, strengths, before, after, long_units, target_tokens)
        before, after = _token_positions(text, starts, ends, count_tokens)

    chunks: list[Chunk] = []
    starts_, ends_, strengths_ = starts.tolist(), ends.tolist(), strengths.tolist()
    before_, after_ = before.tolist(), after.tolist()
    count = len(starts_)
    pages_end = [i for i, strength in enumerate(strengths_) if strength == PAGE]  # units that end a page
    min_fill = target_tokens / 2
    first = 0
    while first < count:
        last = max(first, bisect_right(after_, before_[first] + target_tokens) - 1)
        last = min(last, pages_end[bisect_left(pages_end, first)])
        if last + 1 < count:
            last = _best_cut(strengths_, before_, after_, first, last, min_fill)
        start, end = starts_[first], ends_[last]
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
                tokens=round(after_[last] - before_[first]),
            )
        )
        if last + 1 >= count:
            break
        nxt = last + 1
        if strengths_[last] < SEGMENT and overlap_tokens > 0:
            # the earliest unit from which the rest of this chunk fits in the overlap
            j = bisect_left(before_, after_[last] - overlap_tokens)
            nxt = min(nxt, max(j, first + 1))
        first = nxt
    return chunks, round(after_[-1] - before_[0])


def _token_positions(
    text: str, starts: np.ndarray, ends: np.ndarray, count_tokens: Callable[[str], int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens before each unit's start and up to its end (non-decreasing, so searchsorted works)."""
    if count_tokens is None:
        edges = np.empty(2 * starts.size, dtype=np.int64)
        edges[0::2], edges[1::2] = starts, ends  # units do not overlap: this is sorted
        tokens = cumulative_at(text, edges)
        return tokens[0::2], tokens[1::2]
    sizes = np.array([count_tokens(text[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
    before = np.concatenate(([0.0], np.cumsum(sizes, dtype=np.float64)[:-1]))
    return before, before + sizes


def _split_units(
    text: str,
    starts: np.ndarray,
    ends: np.ndarray,
    strengths: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    long_units: np.ndarray,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    new_starts, new_ends, new_strengths = [], [], []
    previous = 0
    for u in long_units.tolist():
        new_starts.append(starts[previous:u])
        new_ends.append(ends[previous:u])
        new_strengths.append(strengths[previous:u])
        pieces = _split_long(text, int(starts[u]), int(ends[u]), float(after[u] - before[u]), limit)
        new_starts.append(np.array([a for a, _ in pieces], dtype=np.int64))
        new_ends.append(np.array([b for _, b in pieces], dtype=np.int64))
        new_strengths.append(np.array([NONE] * (len(pieces) - 1) + [int(strengths[u])], dtype=np.int8))
        previous = u + 1
    new_starts.append(starts[previous:])
    new_ends.append(ends[previous:])
    new_strengths.append(strengths[previous:])
    return np.concatenate(new_starts), np.concatenate(new_ends), np.concatenate(new_strengths)


def _best_cut(
    strengths: list[int], before: list[float], after: list[float], first: int, last: int, min_fill: float
) -> int:
    """The unit to end the chunk on: the strongest boundary past min_fill tokens, the latest among equals."""
    best, best_strength = last, strengths[last]
    floor = before[first] + min_fill
    for i in range(last - 1, first - 1, -1):
        if after[i] < floor:
            break
        if strengths[i] > best_strength:
            best, best_strength = i, strengths[i]
    return best
