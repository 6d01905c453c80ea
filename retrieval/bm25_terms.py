"""BM25 terms: English lowercased, stop words dropped, Snowball-stemmed (PyStemmer); Chinese cut by jieba
in search mode; numbers and identifiers kept whole ("config_smp", "v2.3", "3.14", "os.path.join"), identifiers
also as their parts: split at underscores and dots, CamelCase at its humps ("HTTPServer": "http", "server").
A name written before "(" also gives the term "name(", so a query for a function's signature finds the line
that defines or calls it, and "def:name" where a directive, `def` or `class` defines it there. The same
function tokenizes documents and queries.

Bump TOKENIZER_VERSION whenever the output for some text changes: cached indexes are keyed by it.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from itertools import chain
from typing import Any

from lector.retrieval.cjk import CJK_RANGES, has_cjk

TOKENIZER_VERSION = "3"

_CJK_SPLIT = re.compile(rf"([{CJK_RANGES}]+)")
_WORD_RE = re.compile(r"\w+(?:\.\w+)*")
_CAMEL_HUMP = re.compile(r"[a-z0-9][A-Z]|[A-Z][A-Z][a-z]")
_CAMEL_PART = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_LAST_WORD = re.compile(r"\w+$")
_DEFINED = re.compile(r"(?:::|\bdef|\bclass)\s*(?:[\w*]+\s+){0,3}\**(?:\w+\.)*(\w+)$")
"""A name defined where it stands: after a directive (".. function:: name(", "c:function:: int name("),
`def` or `class`."""

ENGLISH_STOP_WORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can cannot could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself let me more
    most my myself no nor not of off on once only or other ought our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those through
    to too under until up very was we were what when where which while who whom why with would you your
    yours yourself yourselves s t also may might must shall will just""".split()
)
CHINESE_STOP_WORDS = frozenset(
    (
        "的 了 是 在 和 与 及 或 也 就 都 而 之 于 被 把 对 从 这 那 其 此 个 一个 "
        "我 你 他 她 它 们 我们 你们 他们 吗 呢 吧 啊 着 过 地 得 并 等"
    ).split()
)

_lock = threading.Lock()
_terms_of: dict[str, tuple[str, ...]] = {}
"""Memo: word as written -> its index terms (empty for a stop word); the hot path is one dict lookup."""
_stemmer: Any = None


def _stem(word: str) -> str:
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return str(_stemmer.stemWord(word))


def _single_term(word: str) -> str | None:
    if word in ENGLISH_STOP_WORDS:
        return None
    if word.isascii() and word.isalpha() and len(word) > 3:
        return _stem(word)
    return word


def _dotted_parts(word: str) -> list[str]:
    """A dotted word's parts when it is a name path ("os.path"), not a number or version ("3.14", "v2.3")."""
    parts = word.split(".")
    if len(parts) < 2 or not any(p[:1].isalpha() or p[:1] == "_" for p in parts[1:]):
        return []
    return parts


def _camel_parts(word: str) -> list[str]:
    """The humps of a CamelCase word ("getElementById": get, element, by, id); [] for other words."""
    if word.islower() or word.isupper() or not _CAMEL_HUMP.search(word):
        return []
    return [p.lower() for p in _CAMEL_PART.findall(word)]


def _compute_terms(word: str) -> tuple[str, ...]:
    low = word.lower()
    dotted = _dotted_parts(low)
    if dotted:
        out = [low]
        for part in word.split("."):
            out += [t for t in _compute_terms(part) if t not in out]
        return tuple(out)
    whole = _single_term(low)
    if whole is None:
        return ()
    parts = low.split("_") if "_" in low else _camel_parts(word)
    return (whole, *dict.fromkeys(t for p in parts if p and (t := _single_term(p)) is not None and t != whole))


def _terms(words: list[str]) -> list[str]:
    memo = _terms_of
    missing = set(words).difference(memo)
    if missing:
        if len(memo) > 2_000_000:
            memo.clear()
        for w in missing:
            memo[w] = _compute_terms(w)
    return list(chain.from_iterable(map(memo.__getitem__, words)))


def _called_terms(text: str) -> list[str]:
    """ "name(" for each name written right before an opening parenthesis, and "def:name" where it is defined."""
    out: list[str] = []
    for piece in text.split("(")[:-1]:
        tail = piece[-80:]
        if (called := _LAST_WORD.search(tail)) is not None:
            out.append(f"{called.group(0).lower()}(")
            if (defined := _DEFINED.search(tail)) is not None:
                out.append(f"def:{defined.group(1).lower()}")
    return out


@lru_cache(maxsize=200_000)
def _cut_chinese(run: str) -> tuple[str, ...]:
    import jieba

    with _lock:
        if not getattr(_cut_chinese, "_ready", False):
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _cut_chinese._ready = True  # type: ignore[attr-defined]
    return tuple(w for w in jieba.cut_for_search(run) if w.strip() and w not in CHINESE_STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """BM25 terms of `text`, in order ("name(" terms follow the words)."""
    called = _called_terms(text) if "(" in text else []
    if not has_cjk(text):
        return _terms(_WORD_RE.findall(text)) + called
    out: list[str] = []
    for i, part in enumerate(_CJK_SPLIT.split(text)):
        if i % 2:  # a run of Chinese characters
            if len(part) > 1:
                out.extend(_cut_chinese(part))
            elif part not in CHINESE_STOP_WORDS:
                out.append(part)
        elif part:
            out.extend(_terms(_WORD_RE.findall(part)))
    return out + called
