"""The answer a reader is writing, read off the model's JSON reply (`{"answer": "...", "evidence": [...]}`) while
it streams, so that a page can show the words as they come."""

from __future__ import annotations

import json
import re

from lector.retrieval.compound import without_part_marks

_ANSWER_START = re.compile(r'"answer"\s*:\s*"')


def _escape_length(raw: str, at: int) -> int:
    """The length of the JSON escape at raw[at] (a backslash), or 0 while it is incomplete."""
    length = 6 if raw[at + 1 : at + 2] == "u" else 2
    return length if at + length <= len(raw) else 0


def answer_so_far(raw: str) -> str:
    """The text of the reply's "answer" field written so far (escapes decoded; an incomplete one left out)."""
    start = _ANSWER_START.search(raw)
    if start is None:
        return ""
    out: list[str] = []
    at = start.end()
    while at < len(raw) and raw[at] != '"':
        if raw[at] != "\\":
            out.append(raw[at])
            at += 1
            continue
        length = _escape_length(raw, at)
        if not length:
            break
        try:
            out.append(json.loads(f'"{raw[at : at + length]}"'))
        except ValueError:
            break
        at += length
    return "".join(out)


class Draft:
    """The pieces of one answer as it is written: `advance` gives what is new since the last call."""

    def __init__(self) -> None:
        self.raw = ""
        self.shown = ""

    def advance(self, piece: str) -> tuple[str, bool]:
        """(new text, whether what was shown must be replaced by it) after the reply grew by `piece`."""
        self.raw += piece
        text = without_part_marks(answer_so_far(self.raw), streaming=True)
        if text.startswith(self.shown):
            new, self.shown = text[len(self.shown) :], text
            return new, False
        self.shown = text
        return text, True
