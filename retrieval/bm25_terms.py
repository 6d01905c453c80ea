"""BM25 terms: English lowercased, stop words dropped, Snowball-stemmed (PyStemmer); Chinese cut by jieba
in search mode; numbers and identifiers kept whole ("config_smp", "v2.3", "3.14"), identifiers also
split at underscores. The same function tokenizes documents and queries.

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

TOKENIZER_VERSION = "1"

_CJK_SPLIT = re.compile(rf"([{CJK_RANGES}]+)")
_WORD_RE = re.compile(r"\w+(?:\.\d+)*")

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
"""Memo: lowercased word -> its index terms (empty for a stop word); the hot path is one dict lookup."""
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


def _compute_terms(word: str) -> tuple[str, ...]:
    whole = _single_term(word)
    if whole is None:
        return ()
    if "_" not in word:
        return (whole,)
    parts = [t for p in word.split("_") if p and (t := _single_term(p)) is not None and t != whole]
    return (whole, *parts)


_single_of: dict[str, str] = {}
"""Memo for words without underscores: lowercased word -> its term, "" for a stop word."""


def _terms(words: list[str]) -> list[str]:
    memo = _terms_of
    missing = set(words).difference(memo)
    if missing:
        if len(memo) > 2_000_000:
            memo.clear()
        for w in missing:
            memo[w] = _compute_terms(w)
    return list(chain.from_iterable(map(memo.__getitem__, words)))


def _plain_terms(words: list[str]) -> list[str]:
    """Terms of words that contain no underscore (so each gives at most one term)."""
    memo = _single_of
    missing = set(words).difference(memo)
    if missing:
        if len(memo) > 2_000_000:
            memo.clear()
        to_stem = []
        for w in missing:
            if w in ENGLISH_STOP_WORDS:
                memo[w] = ""
            elif len(w) > 3 and w.isascii() and w.isalpha():
                to_stem.append(w)
            else:
                memo[w] = w
        if to_stem:
            _stem("a")  # loads the stemmer
            for w, stem in zip(to_stem, _stemmer.stemWords(to_stem), strict=True):
                memo[w] = stem
    return list(filter(None, map(memo.__getitem__, words)))


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
    """BM25 terms of `text`, in order."""
    low = text.lower()
    if not has_cjk(low):
        words = _WORD_RE.findall(low)
        return _terms(words) if "_" in low else _plain_terms(words)
    out: list[str] = []
    for i, part in enumerate(_CJK_SPLIT.split(low)):
        if i % 2:  # a run of Chinese characters
            if len(part) > 1:
                out.extend(_cut_chinese(part))
            elif part not in CHINESE_STOP_WORDS:
                out.append(part)
        elif part:
            words = _WORD_RE.findall(part)
            out.extend(_terms(words) if "_" in part else _plain_terms(words))
    return out

