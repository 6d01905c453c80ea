"""Whether a question's own words already find its place, so that asking the model for keywords can be skipped.

The keyword call buys synonyms and translations: it helps when the passage says it differently from the question,
or in another language. When the best chunk for the question's own query holds every span the question quotes, or
(with nothing quoted) every one of its terms, two or more, and the documents are written in the question's
language, the passage has been found in the question's words and the call would cost seconds for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from lector.retrieval.bm25_terms import tokenize
from lector.retrieval.cjk import has_cjk
from lector.retrieval.keywords import Keywords
from lector.retrieval.phrases import phrase_text_pattern
from lector.retrieval.reading_types import LibraryLike

MIN_TERMS = 2
"""Fewer distinct terms than this match too many chunks to say anything."""


def same_language(question: str, languages: Sequence[str]) -> bool:
    """The documents are written in the question's language only (English or Chinese)."""
    return list(languages) == (["zh"] if has_cjk(question) else ["en"])


def found_together(library: LibraryLike, own: Keywords, doc_ids: Sequence[str] | None) -> bool:
    """The best chunk for the question's own query holds its quoted spans, or with none quoted, all of its terms."""
    wanted = set(tokenize(" ".join(own.question_terms)))
    if len(wanted) < MIN_TERMS and not own.phrases:
        return False
    hits = library.search(own.query, k=1, doc_ids=doc_ids)
    if not hits:
        return False
    text = hits[0].chunk.text
    if own.phrases:
        patterns = [phrase_text_pattern(p) for p in own.phrases]
        return all(p is not None and p.search(text) for p in patterns)
    return wanted <= set(tokenize(text))
