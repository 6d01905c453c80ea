"""Whether a question's own words already find its place, so that asking the model for keywords can be skipped.

The keyword call buys synonyms and translations: it helps when the passage says it differently from the question,
or in another language. The passage has been found in the question's own words, and the call would cost seconds
for nothing, when the documents are written in the question's language and the best chunk for the question's own
query holds its anchors: every span it quotes and every code identifier it names, by its last dotted part (a
manual's reader asks about `name` in words the manual does not use: "in the kernel docs", "what type"), or, with
neither, every one of its terms, two or more.
"""

from __future__ import annotations

from collections.abc import Sequence

from lector.retrieval.bm25_terms import tokenize
from lector.retrieval.cjk import has_cjk
from lector.retrieval.keywords import Keywords, is_identifier
from lector.retrieval.phrases import phrase_text_pattern
from lector.retrieval.reading_types import LibraryLike

MIN_TERMS = 2
"""Fewer distinct terms than this match too many chunks to say anything."""


def same_language(question: str, languages: Sequence[str]) -> bool:
    """The documents are written in the question's language only (English or Chinese)."""
    return list(languages) == (["zh"] if has_cjk(question) else ["en"])


def found_together(library: LibraryLike, own: Keywords, doc_ids: Sequence[str] | None) -> bool:
    """The best chunk for the question's own query holds its quoted spans and identifiers, or with neither, all of
    its terms."""
    identifiers = [t.rsplit(".", 1)[-1] for t in own.question_terms if is_identifier(t)]  # as a manual writes it
    terms = set(tokenize(" ".join(own.question_terms)))
    if not own.phrases and not identifiers and len(terms) < MIN_TERMS:
        return False
    hits = library.search(own.query, k=1, doc_ids=doc_ids)
    if not hits:
        return False
    text = hits[0].chunk.text
    patterns = [phrase_text_pattern(p) for p in own.phrases]
    if not all(p is not None and p.search(text) for p in patterns):
        return False
    if identifiers:
        return set(tokenize(" ".join(identifiers))) <= set(tokenize(text))
    return bool(own.phrases) or terms <= set(tokenize(text))
