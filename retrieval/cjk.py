"""Chinese, Japanese and Korean ideographs: the one definition of which characters count as CJK."""

from __future__ import annotations

import re

IDEOGRAPH_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
"""Extension A, the unified ideographs and the compatibility ideographs (first and last code point)."""
CJK_RANGES = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in IDEOGRAPH_RANGES)
"""The same, as the body of a regex character class."""
CJK_RUN = re.compile(rf"[{CJK_RANGES}]+")
_ONE_CJK = re.compile(rf"[{CJK_RANGES}]")


def has_cjk(text: str) -> bool:
    return _ONE_CJK.search(text) is not None


def cjk_count(text: str) -> int:
    return len(_ONE_CJK.findall(text))


def split_ideographs(word: str) -> list[str]:
    """A word with each run of ideographs cut into overlapping character bigrams (a lone ideograph stays
    itself); the text between runs is kept as it is.

    A run of Chinese characters has no spaces, so as one word it would match only itself: with bigrams, an
    answer that copies part of a passage shares terms with it, and an unrelated one rarely does."""
    out: list[str] = []
    at = 0
    for match in CJK_RUN.finditer(word):
        if match.start() > at:
            out.append(word[at : match.start()])
        run = match.group()
        out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        at = match.end()
    if at < len(word):
        out.append(word[at:])
    return out
