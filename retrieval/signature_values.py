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


def _argument(line: str, param: str) -> tuple[int, int, int] | None:
    """(where `param` starts, where its value starts, where it ends) in `line`, for an argument with a default."""
    found = re.search(rf"[(,*]\s*\**{re.escape(param)}\s*(?::[^=,()\[]*(?:\[[^\]]*\])?[^=,()]*)?=\s*", line)
    if found is None:
        return None
    end = _value_end(line, found.end())
    value = line[found.end() : end].strip()
    if not value or len(value) > MAX_VALUE_CHARS:
        return None
    return found.start() + 1, found.end(), end


def argument_text(line: str, param: str) -> str | None:
    """`param=value` as the signature `line` writes it (an annotation kept), or None when `line` has no argument
    `param` with a default."""
    found = _argument(line, param)
    return " ".join(line[found[0] : found[2]].split()).lstrip("*") if found else None


def argument_value(line: str, param: str) -> str | None:
    """The default `line` writes for `param` (`'weight'`, `None`, `(0, 1)`), or None."""
    found = _argument(line, param)
    return line[found[1] : found[2]].strip() if found else None
