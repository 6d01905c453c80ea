"""Focus evidence on the sentences that match the query: a small model reads a few short passages far better
than several whole chunks (it calls NOT FOUND in the chunks answers it finds in their sentence windows)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from lector.retrieval.cjk import has_cjk
from lector.retrieval.phrases import phrase_text_pattern, phrase_words
from lector.retrieval.reading_types import Evidence
from lector.retrieval.sentences import sentence_spans


def _term_pattern(term: str) -> re.Pattern[str]:
    if has_cjk(term):
        return re.compile(re.escape(term))
    if len(phrase_words(term)) > 1:
        phrase = phrase_text_pattern(term)
        if phrase is not None:
            return phrase
    return re.compile(r"(?<!\w)" + re.escape(term), re.IGNORECASE)  # a prefix: "chart" matches "charts"


def ranked_sentences(items: Sequence[Evidence], terms: Iterable[str]) -> list[Evidence]:
    """Every sentence of `items` that contains a query term, best first (see `sentence_windows`)."""
    scored, spans = _score_sentences(items, terms)
    return [_piece(items[i], *spans[i][j]) for _, i, j in scored]


def _piece(e: Evidence, s: int, t: int) -> Evidence:
    """The text at `s:t` of `e`, as evidence of its own."""
    return Evidence(chunk=e.chunk, text=e.text[s:t], start=e.start + s, end=e.start + t, score=e.score, quotes=e.quotes)


def _score_sentences(
    items: Sequence[Evidence], terms: Iterable[str]
) -> tuple[list[tuple[float, int, int]], list[list[tuple[int, int]]]]:
    """(score, item, sentence) for the sentences holding a term, best first; and every item's sentence spans.

    A sentence scores the summed rarity (within the evidence) of the query terms it contains."""
    patterns = [_term_pattern(t) for t in dict.fromkeys(t.lower() for t in terms if t.strip())]
    found: list[tuple[int, int, set[int]]] = []  # (item, sentence, matched terms)
    spans = [sentence_spans(e.text) for e in items]
    for i, e in enumerate(items):
        for j, (s, t) in enumerate(spans[i]):
            text = e.text[s:t]
            found.append((i, j, {k for k, p in enumerate(patterns) if p.search(text)}))
    total = len(found) or 1
    df = [sum(1 for *_, hit in found if k in hit) for k in range(len(patterns))]
    scored = [(sum(math.log(1 + total / df[k]) for k in hit), i, j) for i, j, hit in found if hit]
    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
    return scored, spans


def sentence_windows(
    items: Sequence[Evidence], terms: Iterable[str], sentences: int = 8, radius: int = 1
) -> list[Evidence]:
    """The `sentences` best-matching sentences of `items`, each with `radius` neighbours, as evidence in order.

    Adjacent or overlapping windows of one item merge. Returns `items` unchanged when no sentence contains a term.
    """
    scored, spans = _score_sentences(items, terms)
    if not scored:
        return list(items)
    picked: dict[int, set[int]] = {}
    for _, i, j in scored[:sentences]:
        picked.setdefault(i, set()).update(range(max(0, j - radius), min(len(spans[i]), j + radius + 1)))
    out: list[Evidence] = []
    for i in sorted(picked):
        e, keep = items[i], sorted(picked[i])
        runs: list[list[int]] = []
        for j in keep:
            if runs and j == runs[-1][-1] + 1:
                runs[-1].append(j)
            else:
                runs.append([j])
        for run in runs:
            out.append(_piece(e, spans[i][run[0]][0], spans[i][run[-1]][1]))
    return out


def quoting(items: Sequence[Evidence], phrases: Iterable[str]) -> list[Evidence]:
    """The items that hold one of the quoted phrases (of two words or more), or all of them when none does: a
    line found as quoted is the evidence, and a small model answers from it instead of from its neighbours."""
    patterns = [p for phrase in phrases if len(phrase_words(phrase)) > 1 and (p := phrase_text_pattern(phrase))]
    holding = [e for e in items if any(p.search(e.text) for p in patterns)]
    return holding or list(items)
