"""The parsed shape every format produces, its error, and a builder that records locations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lector.retrieval.parsers.budget import Meter

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
PARSER_VERSION = "2"
"""Bump when any parser's output changes: cached documents are keyed by it."""


class Segment(NamedTuple):
    """A range of the parsed text and where it came from (1-based page/slide/sheet, heading path)."""

    start: int
    end: int
    page: int | None
    section: str | None


class DocumentError(Exception):
    """A document that cannot be read: corrupt, encrypted, empty, too large or of an unknown format."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class ParsedDocument:
    doc_id: str
    """sha256 of the source bytes (or of the UTF-8 text for documents sent as text)."""
    source: str
    text: str
    segments: list[Segment] = field(default_factory=list)
    format: str = "txt"

    def location(self, offset: int) -> tuple[int | None, str | None]:
        """Page and section of the character at `offset` (the last segment starting at or before it)."""
        page: int | None = None
        section: str | None = None
        lo, hi = 0, len(self.segments)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.segments[mid].start <= offset:
                lo = mid + 1
            else:
                hi = mid
        if lo:
            seg = self.segments[lo - 1]
            page, section = seg.page, seg.section
        return page, section


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TextBuilder:
    """Joins blocks with blank lines and records a Segment per block; a meter charges each block's characters."""

    def __init__(self, separator: str = "\n\n", meter: Meter | None = None) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._separator = separator
        self._meter = meter
        self.segments: list[Segment] = []

    def add(self, text: str, page: int | None = None, section: str | None = None) -> None:
        text = text.strip("\n")
        if not text.strip():
            return
        if self._parts:
            self._parts.append(self._separator)
            self._length += len(self._separator)
        start = self._length
        if self._meter is not None:
            self._meter.add_chars(len(text) + len(self._separator))
        self._parts.append(text)
        self._length += len(text)
        last = self.segments[-1] if self.segments else None
        if last and last.page == page and last.section == section and last.end + len(self._separator) == start:
            self.segments[-1] = Segment(last.start, self._length, page, section)
        else:
            self.segments.append(Segment(start, self._length, page, section))

    def text(self) -> str:
        return "".join(self._parts)
