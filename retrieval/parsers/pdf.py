"""PDF with pypdf, one segment per page."""

from __future__ import annotations

import io
import logging

from lector.retrieval.parsers.base import DocumentError, Segment, TextBuilder

log = logging.getLogger(__name__)


def parse_pdf(data: bytes, path: str) -> tuple[str, list[Segment]]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentError(path, "corrupt PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # missing crypto backend, unknown algorithm
                raise DocumentError(path, f"encrypted PDF that cannot be opened: {exc}") from exc
            if not opened:
                raise DocumentError(path, "encrypted PDF (password-protected)")
        pages = reader.pages
        builder = TextBuilder()
        for number, page in enumerate(pages, start=1):
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # one bad page should not lose the others
                log.warning("%s: page %d unreadable: %s", path, number, exc)
                continue
            builder.add(text, number, None)
    except DocumentError:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentError(path, "encrypted PDF (password-protected)") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DocumentError(path, f"corrupt PDF: {exc}") from exc
    return builder.text(), builder.segments
