"""The sentence a model's quote stands for, when the quote is not a sentence of the text as written.

Asked to copy sentences word for word, a small model often rewrites one on the way: it puts the question's words
in ("hid the ocean maps" for "hid the tide charts") or drops a clause; or it copies only the answer's words
("pewter chest"). Such a quote is not a sentence of the text, but the sentence it copies is, and that sentence
(never the model's wording) can stand as the quote.
"""

from __future__ import annotations

import re

from lector.retrieval.cjk import has_cjk
from lector.retrieval.sentences import sentence_spans

MIN_SHARED = 4
"""Words a quote must share with its sentence: fewer would match by chance."""
SHARE = 0.75
"""Of the quote's words, the part its sentence must hold."""
MIN_FRAGMENT_WORDS = 2
MIN_FRAGMENT_CHARS = 10
"""A copied fragment shorter than this would say nothing about where it came from."""

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def near_copy_span(quote: str, text: str) -> tuple[int, int] | None:
    """The span of the sentence of `text` holding most of `quote`'s words (MIN_SHARED at least, SHARE of them),
    the one holding the most where several do; None when none does or the quote is in a CJK script."""
    if has_cjk(quote):
        return None
    wanted = _words(quote)
    if len(wanted) < MIN_SHARED:
        return None
    best: tuple[float, int, int] | None = None
    for start, end in sentence_spans(text):
        present = set(_words(text[start:end]))
        shared = sum(1 for w in wanted if w in present)
        share = shared / len(wanted)
        if shared >= MIN_SHARED and share >= SHARE and (best is None or share > best[0]):
            best = (share, start, end)
    return None if best is None else (best[1], best[2])


def fragment_sentence_span(fragment: str, text: str) -> tuple[int, int] | None:
    """The span of the sentence holding `fragment`, word for word (case and punctuation aside), when it occurs
    once in `text` and is long enough to mean something (MIN_FRAGMENT_WORDS, MIN_FRAGMENT_CHARS); else None."""
    words = _words(fragment)
    if has_cjk(fragment) or len(words) < MIN_FRAGMENT_WORDS or len(" ".join(words)) < MIN_FRAGMENT_CHARS:
        return None
    pattern = re.compile(r"(?<!\w)" + r"\W+".join(map(re.escape, words)) + r"(?!\w)", re.IGNORECASE)
    found = list(pattern.finditer(text))
    if len(found) != 1:
        return None
    at = found[0].start()
    return next(((s, e) for s, e in sentence_spans(text) if s <= at < e), None)
