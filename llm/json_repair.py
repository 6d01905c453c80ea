"""Lenient JSON for model output: repair the damage small models do, in one linear pass.

Repairs: trailing commas, single-quoted strings, Python True/False/None, bare-word keys and
values, // /* */ and # comments, raw newlines and control characters inside strings, invalid
escapes, unescaped inner quotes (a quote not followed by , : } ] ends nothing), and a value cut
off at the end (open strings, arrays and objects are closed).

Not json-repair from PyPI: version 0.64.6 took 20 s on a 1 MB unterminated string (quadratic)
and raised on deep nesting; this pass is linear and only ever raises ValueError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_WORD = re.compile(r"[A-Za-z_$][\w$.\-]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WS = re.compile(r"\s*")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_VALID_ESCAPES = frozenset('"\\/bfnrtu')
_WORD_VALUES = {
    "True": "true",
    "False": "false",
    "None": "null",
    "true": "true",
    "false": "false",
    "null": "null",
    "NaN": "NaN",
    "Infinity": "Infinity",
}
_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
MAX_DEPTH = 200
PairsHook = Callable[[list[tuple[str, Any]]], Any]


class _Repairer:
    """Scans one JSON value starting at `start`; `end` is where that value ended in the source."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.i = start
        self.out: list[str] = []
        self.stack: list[str] = []
        self.end = len(text)
        self.last = ""
        """The last significant token: '{', '[', ',', ':', 'key', 'value' or '' at the start."""
        self.comma_at = -1

    def run(self) -> str:
        text, n = self.text, len(self.text)
        while self.i < n:
            ch = text[self.i]
            if self.last in ("value", "key") and not self.stack:
                self.end = self.i
                break
            if ch.isspace():
                self.out.append(ch)
                self.i += 1
            elif ch in "/#":
                self._comment()
            elif ch in "}]":
                self._close(ch)
            elif ch == ",":
                if self.last == "value":
                    self.comma_at = len(self.out)
                    self.out.append(",")
                    self.last = ","
                self.i += 1
            elif ch == ":":
                if self.last == "key":
                    self.out.append(":")
                    self.last = ":"
                self.i += 1
            else:
                self._value_start()
                if ch in "{[":
                    if len(self.stack) >= MAX_DEPTH:
                        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
                    self.stack.append("}" if ch == "{" else "]")
                    self.out.append(ch)
                    self.last = ch
                    self.i += 1
                else:
                    is_key = self.stack[-1:] == ["}"] and self.last in ("{", ",")
                    if ch in "\"'":
                        self._string(ch)
                    else:
                        self._atom(as_key=is_key)
                    self.last = "key" if is_key else "value"
        self._close_all()
        return "".join(self.out)

    def _value_start(self) -> None:
        """Insert a missing comma (or colon) between two values."""
        if not self.stack:
            return
        if self.last == "value":
            self.comma_at = len(self.out)
            self.out.append(",")
            self.last = ","
        elif self.last == "key":
            self.out.append(":")
            self.last = ":"

    def _string(self, quote: str) -> None:
        text, n = self.text, len(self.text)
        out = self.out
        out.append('"')
        i = self.i + 1
        while i < n:
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1] if i + 1 < n else ""
                if nxt == "u" and not _HEX4.fullmatch(text, i + 2, i + 6):
                    out.append("\\\\u")
                elif nxt and nxt in _VALID_ESCAPES:
                    out.append(ch + nxt)
                elif nxt == "'":
                    out.append("'")
                else:
                    out.append("\\\\" + _escape_char(nxt))
                i += 2
                continue
            if ch == quote:
                if self._quote_closes(i + 1):
                    out.append('"')
                    self.i = i + 1
                    return
                out.append('\\"')
            elif ch == '"':
                out.append('\\"')
            else:
                out.append(_escape_char(ch))
            i += 1
        out.append('"')  # cut off inside a string
        self.i = n

    def _quote_closes(self, j: int) -> bool:
        """A quote ends its string when what can follow a JSON string follows it."""
        if not self.stack:
            return True
        ws = _WS.match(self.text, j)
        k = ws.end() if ws else j
        if k >= len(self.text) or "\n" in self.text[j:k]:
            return True
        return self.text[k] in ",:}]/#"

    def _comment(self) -> None:
        text = self.text
        if text.startswith("/*", self.i):
            close = text.find("*/", self.i + 2)
            self.i = len(text) if close < 0 else close + 2
        elif text.startswith("//", self.i) or text[self.i] == "#":
            close = text.find("\n", self.i)
            self.i = len(text) if close < 0 else close
        else:
            self._value_start()
            self._atom(as_key=False)
            self.last = "value"

    def _close(self, ch: str) -> None:
        self.i += 1
        if ch not in self.stack:
            return  # a stray closer: drop it
        while self.stack:
            expected = self._close_one()
            if expected == ch:
                return

    def _close_one(self) -> str:
        if self.last == ",":
            del self.out[self.comma_at]
        elif self.last == "key":
            self.out.append(": null")
        elif self.last == ":":
            self.out.append("null")
        expected = self.stack.pop()
        self.out.append(expected)
        self.last = "value"
        return expected

    def _close_all(self) -> None:
        while self.stack:
            self._close_one()

    def _atom(self, as_key: bool) -> None:
        text = self.text
        m = None if as_key else _NUMBER.match(text, self.i)
        if m and m.end() > self.i:
            number = m.group()
            if number.startswith("."):
                number = "0" + number
            elif number.startswith("-."):
                number = "-0" + number[1:]
            if number.endswith("."):
                number += "0"
            self.out.append(number)
            self.i = m.end()
            return
        m = _WORD.match(text, self.i)
        if m:
            word = m.group()
            self.out.append(json.dumps(word) if as_key else _WORD_VALUES.get(word) or json.dumps(word))
            self.i = m.end()
            return
        # any other stray character: keep it as a string so nothing is lost silently
        self.out.append(json.dumps(text[self.i]))
        self.i += 1


def _escape_char(ch: str) -> str:
    if ch in _CONTROL:
        return _CONTROL[ch]
    if ch and ord(ch) < 0x20:
        return f"\\u{ord(ch):04x}"
    return ch


def repair_json(text: str, start: int = 0) -> tuple[str, int]:
    """(repaired JSON text of the value starting at `start`, where that value ends in `text`)."""
    rep = _Repairer(text, start)
    return rep.run(), rep.end


def loads_lenient(text: str) -> Any:
    """Parse JSON, repairing damage first if the strict parse fails. Raises ValueError."""
    value, _ = load_prefix(text)
    return value


def load_prefix(text: str, start: int = 0, *, object_pairs_hook: PairsHook | None = None) -> tuple[Any, int]:
    """The first JSON value at or after `start` (repaired if needed) and where it ends in `text`.

    Text after the value is not looked at. Raises ValueError when nothing usable is there.
    `object_pairs_hook` builds each object from its (key, value) pairs, as in `json.loads`.
    """
    ws = _WS.match(text, start)
    start = ws.end() if ws else start
    if start >= len(text):
        raise ValueError("no JSON value found (empty text)")
    if text[start] not in "{[\"'-.0123456789#/":
        raise ValueError(f"expected a JSON object, found {text[start : start + 30]!r}")
    try:
        return json.JSONDecoder(object_pairs_hook=object_pairs_hook).raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError):
        pass
    fixed, end = repair_json(text, start)
    try:
        return json.loads(fixed, object_pairs_hook=object_pairs_hook), end
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{exc.msg if isinstance(exc, json.JSONDecodeError) else exc}") from None
