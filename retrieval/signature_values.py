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


DEFINING_WORDS = ("def", "class", "function", "fn", "func", "sub", "proc", "procedure", "macro")
"""Words that open a definition in a manual's signature line (`def f(...)`), not a type."""


def _call_open(line: str, name: str) -> re.Match[str] | None:
    """`name(` in `line`, the name bare or dotted (`numpy.fft.fft(`)."""
    return re.search(rf"(?<![\w.])(?:\w+\.)*{re.escape(name)}\s*\(", line)


def arguments(line: str, name: str) -> list[str]:
    """The arguments `line` writes inside `name(...)`, each as written, split at the commas between them."""
    found = _call_open(line, name)
    out: list[str] = []
    at = found.end() if found else len(line)
    while at < len(line):
        end = _value_end(line, at)
        out.append(" ".join(line[at:end].split()))
        if end >= len(line) or line[end] != ",":
            break
        at = end + 1
    return [a for a in out if a]


def typed_argument(line: str, name: str, param: str) -> tuple[str, str] | None:
    """The argument of `name` that declares `param` with a type, and that type, as written: an annotation
    (`axes: tuple`) or the words before a C parameter's name (`const struct cec_adapter *adap`); None where it
    declares none."""
    for argument in arguments(line, name):
        declared = argument.split("=", 1)[0].strip()
        if annotated := re.fullmatch(rf"\**{re.escape(param)}\s*:\s*(.+)", declared):
            return argument, annotated.group(1).strip()
        if c_style := re.fullmatch(rf"(.*?[\w*&])\s*(?<!\w){re.escape(param)}\s*(?:\[[^\]]*\])?", declared):
            written = c_style.group(1).strip()
            return (argument, written) if re.search(r"[A-Za-z]", written) else None
    return None


def argument_type(line: str, name: str, param: str) -> str | None:
    """The type `line` declares for `name`'s parameter `param`, as written, or None."""
    found = typed_argument(line, name, param)
    return found[1] if found else None


def return_type(line: str, name: str) -> str | None:
    """The return type `line` declares for `name`: an arrow's (`-> int`) or the words before a C function's name
    (`struct sk_buff *`); None where it declares none."""
    found = _call_open(line, name)
    if found is None:
        return None
    if arrow := re.search(r"\)\s*->\s*(.+?)\s*:?\s*$", line[found.end() :]):
        return arrow.group(1)
    before = re.sub(r"^\s*(?:\.\.\s*[\w:-]+::)?", "", line[: found.start()])
    words = [w for w in before.split() if w not in (*DEFINING_WORDS, "async")]
    return " ".join(words) if words and re.search(r"[A-Za-z]", words[0]) else None
