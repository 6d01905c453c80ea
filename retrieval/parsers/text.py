"""Plain text, Markdown and delimited tables (csv/tsv)."""

from __future__ import annotations

import codecs
import csv
import io
import re

from lector.retrieval.parsers.base import DocumentError, Segment, TextBuilder

_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]


def decode_bytes(data: bytes, path: str) -> str:
    """UTF-8 or a BOM-marked encoding; otherwise the charset_normalizer guess, then latin-1."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentError(path, f"corrupt {encoding} text: {exc.reason}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:1_000_000]).best()
        if best is not None and best.encoding:
            encoding = best.encoding
            # single-byte code pages are hard to tell apart; Windows-1252 is by far the most common
            if encoding.startswith(("cp125", "iso8859", "latin", "mac_")) and _decodes(data, "cp1252"):
                encoding = "cp1252"
            return data.decode(encoding, errors="replace")
    except (ImportError, LookupError):
        pass
    return data.decode("latin-1")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def markdown_segments(text: str) -> list[Segment]:
    """One segment per heading, from the heading line to the next one; section is the heading path."""
    segments: list[Segment] = []
    path: list[tuple[int, str]] = []
    in_fence = False
    fence_spans = [(m.start(), m.end()) for m in re.finditer(r"^(```|~~~).*?^\1", text, re.MULTILINE | re.DOTALL)]
    starts: list[tuple[int, str | None]] = [(0, None)]
    for match in _ATX_HEADING.finditer(text):
        in_fence = any(a <= match.start() < b for a, b in fence_spans)
        if in_fence:
            continue
        level = len(match.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level]
        path.append((level, match.group(2).strip()))
        starts.append((match.start(), " > ".join(title for _, title in path)))
    for i, (start, section) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if end > start:
            segments.append(Segment(start, end, None, section))
    return segments


def parse_plain(text: str) -> tuple[str, list[Segment]]:
    return text, [Segment(0, len(text), None, None)] if text else []


def parse_markdown(text: str) -> tuple[str, list[Segment]]:
    return text, markdown_segments(text)


def row_line(header: list[str], row: list[str]) -> str:
    cells = []
    for i, value in enumerate(row):
        value = str(value).strip()
        if not value:
            continue
        name = header[i].strip() if i < len(header) else ""
        cells.append(f"{name}: {value}" if name else value)
    return " | ".join(cells)


def parse_delimited(text: str, delimiter: str, path: str) -> tuple[str, list[Segment]]:
    """Each row becomes one line "header: value | header: value", so every chunk keeps the column names."""
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise DocumentError(path, f"corrupt table: {exc}") from exc
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return "", []
    header, body = rows[0], rows[1:]
    builder = TextBuilder(separator="\n")
    builder.add(" | ".join(h.strip() for h in header))
    for row in body:
        builder.add(row_line(header, row))
    return builder.text(), builder.segments
