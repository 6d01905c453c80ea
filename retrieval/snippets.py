"""Snippets: the sentence(s) of a chunk that match a query best, with the words that match it marked.

A sentence scores by how many of the query's BM25 terms it holds (distinct first, then all occurrences); the best
one is taken, then the others that add query terms it lacks, while they fit. A word is marked when its own BM25
terms meet the query's, so "lamps" is marked for a query about a lamp; in a run of Chinese, the query's Chinese
terms are marked where they occur.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from lector.retrieval.bm25_terms import tokenize
from lector.retrieval.cjk import has_cjk
from lector.retrieval.sentences import sentence_spans

SNIPPET_CHARS = 300
"""About as much as a snippet shows; a longer best sentence is cut around its first marked word."""
_WORD = re.compile(r"\w+(?:\.\w+)*")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Snippet:
    """The chosen sentences, whitespace collapsed, as pieces: (text, matches the query)."""

    parts: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        return "".join(piece for piece, _ in self.parts)

    @property
    def marked(self) -> list[str]:
        return [piece for piece, hit in self.parts if hit]


def _score(text: str, terms: set[str]) -> tuple[int, int]:
    counts = Counter(t for t in tokenize(text) if t in terms)
    return len(counts), sum(counts.values())


def _hit_spans(text: str, terms: set[str]) -> list[tuple[int, int]]:
    """Spans of `text` that match the query terms."""
    spans: list[tuple[int, int]] = []
    chinese = sorted((t for t in terms if has_cjk(t)), key=len, reverse=True)
    for word in _WORD.finditer(text):
        if not has_cjk(word.group(0)):
            if terms.intersection(tokenize(word.group(0))):
                spans.append(word.span())
            continue
        taken: list[tuple[int, int]] = []
        for term in chinese:
            for found in re.finditer(re.escape(term), word.group(0)):
                span = (word.start() + found.start(), word.start() + found.end())
                if all(span[1] <= s or span[0] >= e for s, e in taken):
                    taken.append(span)
        spans += sorted(taken)
    return spans


def _chosen(text: str, terms: set[str], max_chars: int) -> list[tuple[int, int]]:
    spans = sentence_spans(text)
    if not spans:
        return []
    scored = [(_score(text[s:e], terms), i) for i, (s, e) in enumerate(spans)]
    ranked = sorted(scored, key=lambda item: (-item[0][0], -item[0][1], item[1]))
    best = ranked[0][1]
    chosen = [best]
    covered = set(tokenize(text[slice(*spans[best])])) & terms
    used = spans[best][1] - spans[best][0]
    for (distinct, _), i in ranked[1:]:
        s, e = spans[i]
        adds = (set(tokenize(text[s:e])) & terms) - covered
        if distinct and adds and used + (e - s) <= max_chars:
            chosen.append(i)
            covered |= adds
            used += e - s
    return [spans[i] for i in sorted(chosen)]


def _cut(text: str, hits: list[tuple[int, int]], max_chars: int) -> tuple[int, int]:
    """The part of a long sentence to show: from a little before its first hit, about `max_chars` long."""
    if len(text) <= max_chars:
        return 0, len(text)
    first = hits[0][0] if hits else 0
    start = max(0, min(first - max_chars // 5, len(text) - max_chars))
    if start:
        space = text.find(" ", start, first if first > start else len(text))
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + max_chars)
    if end < len(text):
        space = text.rfind(" ", start + max_chars // 2, end)
        end = space if space > 0 else end
    return start, end


def _pieces(text: str, hits: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    pos = 0
    for s, e in hits:
        if s < pos:
            continue
        out += [(text[pos:s], False), (text[s:e], True)]
        pos = e
    out.append((text[pos:], False))
    return [(_SPACE.sub(" ", piece), hit) for piece, hit in out if piece]


def snippet(text: str, query: str, max_chars: int = SNIPPET_CHARS) -> Snippet:
    """The sentence(s) of `text` that best match `query`, with the matching words marked. A chunk where no
    sentence holds a query term gives its opening instead."""
    terms = set(tokenize(query))
    parts: list[tuple[str, bool]] = []
    last_end: int | None = None
    for start, end in _chosen(text, terms, max_chars):
        sentence = text[start:end]
        hits = _hit_spans(sentence, terms)
        cut_start, cut_end = _cut(sentence, hits, max_chars)
        shown = [(s - cut_start, e - cut_start) for s, e in hits if s >= cut_start and e <= cut_end]
        pieces = _pieces(sentence[cut_start:cut_end].strip(), _shifted(sentence[cut_start:cut_end], shown))
        if last_end is not None:
            parts.append((" " if not text[last_end:start].strip() else " … ", False))
        last_end = end
        if cut_start:
            parts.append(("…", False))
        parts += pieces
        if cut_end < len(sentence):
            parts.append(("…", False))
    return Snippet(tuple(_merged(parts)))


def _shifted(piece: str, hits: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Hits in `piece` moved to where they stand once `piece` is stripped."""
    lead = len(piece) - len(piece.lstrip())
    return [(s - lead, e - lead) for s, e in hits]


def _merged(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for piece, hit in parts:
        if out and out[-1][1] == hit:
            out[-1] = (out[-1][0] + piece, hit)
        else:
            out.append((piece, hit))
    return out
