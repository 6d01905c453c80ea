"""Turn files (or text sent by the browser extension) into text plus the locations it came from.

    doc = parse_file("report.pdf")         # ParsedDocument(doc_id=sha256 of the bytes, text, segments, ...)
    doc = parse_text(html, "https://...", format="html")

Errors are DocumentError(path, reason): corrupt, encrypted, empty, oversized, unsupported, or over the
parse's budget (ParseBudget: seconds, memory, expanded bytes, characters). parse_bytes runs in this process
and charges the budget as it goes; retrieval.parsers.isolated runs it in a child process that is killed at
the deadline or past its memory.
"""

from __future__ import annotations

import os
from pathlib import Path

from lector.retrieval.parsers.base import (
    DEFAULT_MAX_BYTES,
    DocumentError,
    ParsedDocument,
    Segment,
    TextBuilder,
    content_hash,
)
from lector.retrieval.parsers.budget import Meter, ParseBudget
from lector.retrieval.parsers.text import decode_bytes

__all__ = [
    "DocumentError",
    "ParseBudget",
    "ParsedDocument",
    "Segment",
    "TextBuilder",
    "parse_file",
    "parse_bytes",
    "parse_text",
    "detect_format",
    "SUPPORTED_FORMATS",
    "max_bytes_default",
    "read_file_bytes",
    "content_hash",
]

SUPPORTED_FORMATS = ("txt", "md", "html", "pdf", "docx", "pptx", "csv", "tsv", "xlsx")

_EXTENSIONS = {
    ".txt": "txt",
    ".text": "txt",
    ".log": "txt",
    ".rst": "txt",
    ".py": "txt",
    ".json": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
}
_LEGACY = {".doc": "docx", ".ppt": "pptx", ".xls": "xlsx"}


def max_bytes_default() -> int:
    return int(os.environ.get("LECTOR_MAX_DOC_BYTES", DEFAULT_MAX_BYTES))


def detect_format(path: str, head: bytes) -> str | None:
    """Format from the extension; an unknown extension is read as text if its start looks like text."""
    ext = Path(path).suffix.lower()
    if head.startswith(b"%PDF"):
        return "pdf"
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if ext in _LEGACY:
        return None
    if b"\x00" in head[:8192] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    return "txt"


def read_file_bytes(path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """The file's bytes, or DocumentError when it is missing, unreadable or over the size limit."""
    name = os.fspath(path)
    limit = max_bytes_default() if max_bytes is None else max_bytes
    try:
        size = os.path.getsize(name)
        if size > limit:
            raise DocumentError(name, f"too large ({size:,} bytes; the limit is {limit:,})")
        with open(name, "rb") as handle:
            return handle.read()
    # `from None`: the OS error says nothing the reason does not, and a chained traceback hides it.
    except FileNotFoundError:
        raise DocumentError(name, "file not found") from None
    except IsADirectoryError:
        raise DocumentError(name, "is a directory") from None
    except PermissionError:
        raise DocumentError(name, "permission denied") from None


def parse_file(
    path: str | os.PathLike[str],
    max_bytes: int | None = None,
    source: str | None = None,
    budget: ParseBudget | None = None,
) -> ParsedDocument:
    name = os.fspath(path)
    return parse_bytes(read_file_bytes(name, max_bytes), source or name, max_bytes=max_bytes, budget=budget)


def parse_bytes(
    data: bytes, source: str, fmt: str | None = None, max_bytes: int | None = None, budget: ParseBudget | None = None
) -> ParsedDocument:
    """Parse in this process, within `budget` (the default one when None)."""
    limit = max_bytes_default() if max_bytes is None else max_bytes
    if len(data) > limit:
        raise DocumentError(source, f"too large ({len(data):,} bytes; the limit is {limit:,})")
    if not data.strip():
        raise DocumentError(source, "empty document")
    fmt = fmt or detect_format(source, data[:8192])
    if fmt is None or fmt not in SUPPORTED_FORMATS:
        ext = Path(source).suffix.lower() or "(no extension)"
        hint = " (save it as the modern Office format)" if ext in _LEGACY else ""
        raise DocumentError(source, f"unsupported format {ext}{hint}")
    text, segments = _parse(data, fmt, Meter(source, budget or ParseBudget()))
    if not text.strip():
        what = "no extractable text (a scanned PDF needs OCR)" if fmt == "pdf" else "empty document (no text)"
        raise DocumentError(source, what)
    return ParsedDocument(content_hash(data), source, text, segments, fmt)


def _parse(data: bytes, fmt: str, meter: Meter) -> tuple[str, list[Segment]]:
    source = meter.source
    if fmt == "pdf":
        from lector.retrieval.parsers.pdf import parse_pdf

        return parse_pdf(data, source, meter)
    if fmt == "docx":
        from lector.retrieval.parsers.word import parse_docx

        return parse_docx(data, source, meter)
    if fmt == "pptx":
        from lector.retrieval.parsers.slides import parse_pptx

        return parse_pptx(data, source, meter)
    if fmt == "xlsx":
        from lector.retrieval.parsers.sheets import parse_xlsx

        return parse_xlsx(data, source, meter)
    return _parse_string(decode_bytes(data, source), fmt, meter)


def _parse_string(text: str, fmt: str, meter: Meter) -> tuple[str, list[Segment]]:
    from lector.retrieval.parsers import text as plain

    source = meter.source
    if fmt != "html":
        meter.add_chars(len(text))
    if fmt == "md":
        return plain.parse_markdown(text)
    if fmt in ("csv", "tsv"):
        return plain.parse_delimited(text, "\t" if fmt == "tsv" else ",", source)
    if fmt == "html":
        from lector.retrieval.parsers.html import parse_html

        body, segments, _title = parse_html(text, source, meter)
        return body, segments
    return plain.parse_plain(text)


def parse_text(text: str, source: str, format: str = "txt") -> ParsedDocument:
    """A document sent as text (a page from the browser extension); doc_id hashes its UTF-8 bytes."""
    fmt = {"text": "txt", "markdown": "md", "htm": "html"}.get(format, format)
    if fmt not in ("txt", "md", "html", "csv", "tsv"):
        raise DocumentError(source, f"unsupported text format {format!r}")
    if not text.strip():
        raise DocumentError(source, "empty document")
    body, segments = _parse_string(text, fmt, Meter(source, ParseBudget()))
    if not body.strip():
        raise DocumentError(source, "empty document (no text)")
    return ParsedDocument(content_hash(text.encode("utf-8")), source, body, segments, fmt)
