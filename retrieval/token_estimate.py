"""A fast estimate of Qwen2.5 token counts, and prefix sums of it for cutting long texts.

The estimate is linear in nine character-class features (letters, word starts, digits, CJK
characters and runs, punctuation characters and runs, line-break runs, repeated spaces), computed with numpy
over the whole text at once. COEFFICIENTS were fitted with bench/token_calibration.py against the
Qwen2.5 tokenizer on English prose, reStructuredText, Python source and Chinese text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lector.retrieval.cjk import IDEOGRAPH_RANGES

# per letter, per word start, per digit, per CJK char, per punctuation char, per punctuation run,
# per line-break run, per space that follows whitespace, per CJK run
COEFFICIENTS = np.array([0.0304, 0.9545, 1.3834, 0.4533, 0.1155, 0.5702, 0.7644, 0.0716, 1.6982])

_SPACE, _NEWLINE, _LETTER, _DIGIT, _CJK, _PUNCT = range(6)
_START = 6  # "previous class" of the first character
_KANA = (0x3040, 0x30FF)
_HANGUL = (0xAC00, 0xD7AF)


def _class_table() -> np.ndarray:
    """The class of every BMP code point (anything above is counted as punctuation/symbol)."""
    codes = np.arange(0x10000, dtype=np.uint32)
    cls = np.full(codes.shape, _LETTER, dtype=np.uint8)
    cls[codes < 128] = _PUNCT
    cls[((codes >= 65) & (codes <= 90)) | ((codes >= 97) & (codes <= 122))] = _LETTER
    cls[(codes >= 48) & (codes <= 57)] = _DIGIT
    cls[(codes == 32) | (codes == 9) | (codes == 11) | (codes == 12) | (codes == 0xA0)] = _SPACE
    cls[(codes == 10) | (codes == 13)] = _NEWLINE
    for lo, hi in (
        (0x80, 0xBF),
        (0x2000, 0x2BFF),
        (0x3000, 0x303F),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFF0F),
        (0xFF1A, 0xFF20),
        (0xFF3B, 0xFF40),
        (0xFF5B, 0xFF65),
        (0xD800, 0xDFFF),
        (0xE000, 0xF8FF),
    ):
        cls[lo : hi + 1] = _PUNCT
    for lo, hi in (*IDEOGRAPH_RANGES, _KANA, _HANGUL):  # kana and hangul tokenize like ideographs
        cls[lo : hi + 1] = _CJK
    return cls


_CLASS_TABLE = _class_table()


def _pair_features() -> np.ndarray:
    """features[:, prev * 6 + cls]: what a character of class cls after one of class prev contributes."""
    table = np.zeros((len(COEFFICIENTS), 7 * 6), dtype=np.float64)
    for prev in range(7):
        for cls in range(6):
            col = prev * 6 + cls
            if cls == _LETTER:
                table[0, col] = 1
                table[1, col] = prev != _LETTER
            elif cls == _DIGIT:
                table[2, col] = 1
            elif cls == _CJK:
                table[3, col] = 1
                table[8, col] = prev != _CJK
            elif cls == _PUNCT:
                table[4, col] = 1
                table[5, col] = prev != _PUNCT
            elif cls == _NEWLINE:
                table[6, col] = prev != _NEWLINE
            elif cls == _SPACE:
                table[7, col] = prev in (_SPACE, _NEWLINE)
    return table


_PAIR_FEATURES = _pair_features()
_PAIR_COST = COEFFICIENTS @ _PAIR_FEATURES
_PAIR_COST_32 = _PAIR_COST.astype(np.float32)


def _pair_index(text: str) -> np.ndarray:
    """Per character, previous class * 6 + class (uint8)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if codes.size and int(codes.max()) > 0xFFFF:
        cls = np.where(codes < 0x10000, _CLASS_TABLE[np.minimum(codes, 0xFFFF)], _PUNCT).astype(np.uint8)
    else:
        cls = _CLASS_TABLE[codes]
    pair = np.empty(cls.shape, dtype=np.uint8)
    if cls.size:
        pair[0] = _START * 6 + cls[0]
        np.multiply(cls[:-1], 6, out=pair[1:])
        pair[1:] += cls[1:]
    return pair


def features(text: str) -> np.ndarray:
    """Feature counts (the COEFFICIENTS' multiplicands) of `text`."""
    counts = np.bincount(_pair_index(text), minlength=7 * 6)
    return _PAIR_FEATURES @ counts


def cumulative_tokens(text: str) -> np.ndarray:
    """c[i] = estimated tokens of text[:i]; the estimate for text[a:b] is about c[b] - c[a]."""
    out = np.zeros(len(text) + 1, dtype=np.float64)
    np.cumsum(_PAIR_COST_32[_pair_index(text)], out=out[1:], dtype=np.float64)
    return out


def cumulative_at(text: str, positions: np.ndarray) -> np.ndarray:
    """Estimated tokens of text[:p] for each p in `positions` (one pass, no per-character cumsum).
    Fastest when `positions` is already sorted."""
    positions = np.asarray(positions, dtype=np.int64)
    n = len(text)
    if n == 0 or positions.size == 0:
        return np.zeros(positions.shape, dtype=np.float64)
    if positions.size > 1 and bool((positions[1:] < positions[:-1]).any()):
        order = np.argsort(positions, kind="stable")
        out = np.empty(positions.shape, dtype=np.float64)
        out[order] = cumulative_at(text, positions[order])
        return out
    costs = _PAIR_COST_32[_pair_index(text)]
    # distinct positions, with 0 first: reduceat sums costs between consecutive ones
    new = np.r_[True, positions[1:] != positions[:-1]]
    bounds = positions[new]
    slot = np.cumsum(new) - 1
    if bounds[0] != 0:
        bounds = np.r_[0, bounds]
        slot += 1
    inner = bounds[bounds < n]
    segments = np.add.reduceat(costs, inner, dtype=np.float64)
    cumulative = np.concatenate((np.zeros(1), np.cumsum(segments)))
    return cumulative[slot]


def approx_tokens(text: str) -> int:
    """Estimated Qwen2.5 token count of `text`."""
    if not text or text.isspace():
        return 0
    return max(1, round(float(COEFFICIENTS @ features(text))))


def reference_tokenizer(path: str | os.PathLike[str] | None = None) -> Any | None:
    """The real Qwen2.5 tokenizer (a `tokenizers.Tokenizer`) if one is available offline, else None.

    Looks at `path`, $LECTOR_QWEN_TOKENIZER, then $LECTOR_CACHE/models/qwen2.5-tokenizer.json; failing
    those, converts it from an installed embedded GGUF model with transformers (slow, ~30 s) and saves
    the result there for next time. Used by the calibration bench and test, never by the index itself.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    cache = _models_dir() / "qwen2.5-tokenizer.json"
    for candidate in (path, os.environ.get("LECTOR_QWEN_TOKENIZER"), cache):
        if candidate and Path(candidate).is_file():
            return Tokenizer.from_file(str(candidate))
    gguf = next((p for p in sorted(_models_dir().glob("qwen2.5*.gguf")) if p.stat().st_size > 0), None)
    if gguf is None:
        return None
    try:
        from transformers import AutoTokenizer

        converted = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        cache.parent.mkdir(parents=True, exist_ok=True)
        converted.backend_tokenizer.save(str(cache))
    except Exception:  # transformers missing or unable to read this GGUF
        return None
    return Tokenizer.from_file(str(cache))


def _models_dir() -> Path:
    env = os.environ.get("LECTOR_CACHE")
    if env:
        return Path(env).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lector" / "models"
