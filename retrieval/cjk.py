"""Chinese, Japanese and Korean ideographs: the one definition of which characters count as CJK."""

from __future__ import annotations

import re

CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""Extension A, the unified ideographs and the compatibility ideographs, as a regex character-class body."""
CJK_RUN = re.compile(rf"[{CJK_RANGES}]+")
_ONE_CJK = re.compile(rf"[{CJK_RANGES}]")


def has_cjk(text: str) -> bool:
    return _ONE_CJK.search(text) is not None


def cjk_count(text: str) -> int:
    return len(_ONE_CJK.findall(text))
