"""What a signature line writes for one of its parameters: `dim=2`, `weight='weight'`, `axes: tuple = (0, 1)`.
Asked for a parameter's default, a small model shown a long signature picks a neighbour's value; the pointer
under the question names the one argument."""

from __future__ import annotations

import re

MAX_VALUE_CHARS = 80
_OPEN, _CLOSE = "([{", ")]}"


def _value_end(line: str, at: int) -> int:
    """Where the value starting at `at` ends: the first comma or closing bracket outside brackets and quotes."""
    depth, quote, i = 0, "", at
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            if depth == 0:
                return i
            depth -= 1
        elif ch == "," and depth == 0:
            return i
        i += 1
    return i


def argument_text(line: str, param: str) -> str | None:
    """`param=value` as the signature `line` writes it (an annotation kept), or None when `line` has no argument
    `param` with a default."""
    found = re.search(rf"[(,*]\s*\**{re.escape(param)}\s*(?::[^=,()\[]*(?:\[[^\]]*\])?[^=,()]*)?=\s*", line)
    if found is None:
        return None
    end = _value_end(line, found.end())
    value = line[found.end() : end].strip()
    if not value or len(value) > MAX_VALUE_CHARS:
        return None
    return " ".join(line[found.start() + 1 : end].split()).lstrip("*")
