"""Sentences: the one splitter of text into sentences, and the punctuation that ends one.

Chunking (retrieval/chunking.py) finds the same sentence ends over a whole document at once with numpy tables
built from these marks.
"""

from __future__ import annotations

import re

SENTENCE_END_MARKS = ".!?"
"""End a sentence when whitespace follows."""
CJK_SENTENCE_END_MARKS = "。！？；…"
"""End a sentence wherever they stand."""
CLOSING_MARKS = "\"')]”’」』）"
"""Quotes and brackets that close a sentence after its end mark."""
MAX_SENTENCE_CHARS = 600
"""Longer stretches without a sentence end (tables, lists, run-on text) are cut into pieces of this size."""

_CJK_ENDS = re.escape(CJK_SENTENCE_END_MARKS)
_SENTENCE_END = re.compile(
    rf"(?<=[{re.escape(SENTENCE_END_MARKS)};{_CJK_ENDS}])\s+|(?<=[{_CJK_ENDS}])|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (or paragraphs, list items) of `text`, blank ones dropped. A span of
    punctuation alone (the ".." of a reST directive such as ".. function:: name(arg=1)") joins the next one."""
    out: list[tuple[int, int]] = []
    held: int | None = None
    for start, end in _raw_spans(text):
        start = start if held is None else held
        held = None
        if any(ch.isalnum() for ch in text[start:end]):
            out.append((start, end))
        else:
            held = start
            last_end = end
    if held is not None:
        out.append((held, last_end))
    return out


def _raw_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        while end - pos > MAX_SENTENCE_CHARS:
            cut = text.rfind(" ", pos + MAX_SENTENCE_CHARS // 2, pos + MAX_SENTENCE_CHARS)
            cut = cut if cut > pos else pos + MAX_SENTENCE_CHARS
            spans.append((pos, cut))
            pos = cut
        if text[pos:end].strip():
            spans.append((pos, end))
        if match:
            pos = match.end()
    return spans
