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

from retrieval.parsers import ParsedDocument
from retrieval.types import Chunk

CHUNKER_VERSION = "1"

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD = re.compile(rf"[^\W\d_{_CJK}]+")
_DIGIT = re.compile(r"\d")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_PUNCT = re.compile(rf"[^\w\s{_CJK}]+")
_NEWLINES = re.compile(r"\n+")
_SPACE_RUN = re.compile(r"[ \t]{2,}")

# tokens ~= W*words + L*letters + D*digits + C*cjk_chars + P*punct_runs + Q*punct_chars
#           + N*newline_runs + S*space_runs
COEFFICIENTS = (0.62, 0.072, 1.0, 0.72, 0.55, 0.45, 0.55, 0.6)


def approx_tokens(text: str) -> int:
    """Fast estimate of the Qwen2.5 token count of `text`."""
    words = _WORD.findall(text)
    letters = sum(map(len, words))
    punct = _PUNCT.findall(text)
    features = (
        len(words),
        letters,
        len(_DIGIT.findall(text)),
        len(_CJK_CHAR.findall(text)),
        len(punct),
        sum(map(len, punct)),
        len(_NEWLINES.findall(text)),
        len(_SPACE_RUN.findall(text)),
    )
    estimate = sum(c * f for c, f in zip(COEFFICIENTS, features, strict=True))
    return max(1, round(estimate)) if text.strip() else 0


class _Unit(NamedTuple):
    start: int
    end: int
    strength: int
    """How good a cut after this unit is: 4 page/section change, 3 paragraph, 2 sentence, 1 line, 0 none."""


_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE_END = re.compile(r"(?:[.!?](?:[\"'”’)\]]*)(?=\s)|[。！？；…](?:[”’」』）)]*))\s*")
_LINE = re.compile(r"\r?\n")


def _units(text: str, breaks: set[int]) -> list[tuple[int, int, int]]:
    """Non-blank spans of text, with the strength of the boundary after each."""
    pieces: list[tuple[int, int, int]] = []
    cuts: dict[int, int] = {}
    for pattern, strength in ((_LINE, 1), (_SENTENCE_END, 2), (_PARAGRAPH, 3)):
        for m in pattern.finditer(text):
            if m.end() > m.start():
                cuts[m.end()] = max(cuts.get(m.end(), 0), strength)
    for b in breaks:
        if 0 < b < len(text):
            cuts[b] = 4
    cuts[len(text)] = 4
    start = 0
    for end in sorted(cuts):
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        content = piece.strip()
        if content:
            s = start + lead
            pieces.append((s, s + len(content), cuts[end]))
        start = end
    return pieces


def _split_long(text: str, unit: tuple[int, int, int], tokens: int, limit: int) -> list[tuple[int, int, int]]:
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
    count = count_tokens or approx_tokens
    text = doc.text
    breaks = {seg.start for seg in doc.segments}
    units: list[_Unit] = []
    for raw in _units(text, breaks):
        n = count(text[raw[0] : raw[1]])
        if n > target_tokens:
            units.extend(_Unit(*piece) for piece in _split_long(text, raw, n, target_tokens))
        else:
            units.append(_Unit(*raw))
    if not units:
        return [], 0
    sizes = [count(text[u.start : u.end]) for u in units]
    prefix = [0]
    for n in sizes:
        prefix.append(prefix[-1] + n)

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
                tokens=prefix[last + 1] - prefix[first],
            )
        )
        if last + 1 >= len(units):
            break
        nxt = last + 1
        if units[last].strength < 4:
            while nxt - 1 > first and prefix[last + 1] - prefix[nxt - 1] <= overlap_tokens:
                nxt -= 1
        first = nxt
    return chunks, prefix[-1]


def _best_cut(units: list[_Unit], prefix: list[int], first: int, last: int, min_fill: int) -> int:
    """The unit to end the chunk on: the strongest boundary past min_fill tokens, the latest among equals."""
    best = last
    best_strength = units[last].strength
    for i in range(last - 1, first - 1, -1):
        if prefix[i + 1] - prefix[first] < min_fill:
            break
        if units[i].strength > best_strength:
            best, best_strength = i, units[i].strength
    return best
