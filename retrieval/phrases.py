"""Quoted phrases: the spans a question quotes, and finding them in a document's text as phrases.

A phrase matches its words in order with anything but letters and digits between them (punctuation, line
breaks), case aside, and an elided past tense either way ("strain'd" matches "strained" and back). Stop words
count: "let it be" is a phrase although BM25 has no term for it. The search runs over the document's UTF-8
bytes lowered once (ASCII case), with a pattern that starts with a literal, so it is a fast scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|`([^`]+)`|(?<![\w'])'([^']+?)'(?![\w'])|``(.+?)''")
_PHRASE_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\W_]+['’]", re.UNICODE)
_BYTES_GAP = "[^a-z0-9]+"
_TEXT_GAP = r"[\W_]+"
_APOSTROPHE = "(?:'|’)"
MAX_PHRASE_WORDS = 40


def quoted_spans(text: str) -> list[str]:
    """The quoted spans of `text` ("…", “…”, ‘…’, '…', `…`), in order, without repeats."""
    out: list[str] = []
    for match in _QUOTED.finditer(text):
        span = next(g for g in match.groups() if g is not None).strip()
        if span and _PHRASE_WORD.search(span) and span not in out:
            out.append(span)
    return out


def phrase_words(phrase: str) -> list[str]:
    return _PHRASE_WORD.findall(phrase)[:MAX_PHRASE_WORDS]


def _word_pattern(word: str) -> str:
    low = word.lower().replace("’", "'")
    for elided in ("'d", "ed"):
        if low.endswith(elided) and len(low) > len(elided) + 1:
            return re.escape(low[: -len(elided)]) + f"(?:ed|{_APOSTROPHE}d)"
    return f"{_APOSTROPHE}?".join(re.escape(p) for p in low.split("'"))


def _pattern_source(phrase: str, gap: str) -> str | None:
    words = phrase_words(phrase)
    return gap.join(_word_pattern(w) for w in words) if words else None


def phrase_pattern(phrase: str) -> re.Pattern[bytes] | None:
    """The pattern of `phrase` over lowered UTF-8 bytes (it starts with a literal), or None when it has no words."""
    source = _pattern_source(phrase, _BYTES_GAP)
    return re.compile(source.encode("utf-8")) if source else None


def phrase_text_pattern(phrase: str) -> re.Pattern[str] | None:
    """The same phrase as a whole-word, case-blind pattern over text (to find the sentence that holds it)."""
    source = _pattern_source(phrase, _TEXT_GAP)
    return re.compile(rf"(?<!\w){source}(?!\w)", re.IGNORECASE) if source else None


def _is_boundary(data: bytes | memoryview, at: int) -> bool:
    if at < 0 or at >= len(data):
        return True
    byte = data[at]
    return byte >= 0x80 or not chr(byte).isalnum()


def find_phrase(lowered: bytes, pattern: re.Pattern[bytes]) -> Iterator[tuple[int, int]]:
    """Byte spans of whole-word matches of `pattern` in `lowered`, in order."""
    for match in pattern.finditer(lowered):
        if _is_boundary(lowered, match.start() - 1) and _is_boundary(lowered, match.end()):
            yield match.start(), match.end()
