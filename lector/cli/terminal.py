"""Text bound for a terminal: control characters shown, not obeyed.

Model output, tool results and document text can hold escape sequences (clear the screen, set the window title,
rewrite what was printed before) or bidirectional overrides that make text read differently than it is. Tabs
and newlines pass; everything else in those classes is shown as a visible escape such as `\\x1b`.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    return _CONTROL.sub(_visible, text)
