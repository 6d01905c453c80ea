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
