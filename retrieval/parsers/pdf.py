"""PDF with pypdf, one segment per page; pypdf's own limits (stream sizes, parsing work) become reasons."""

from __future__ import annotations

import io
import logging
from typing import Any

from lector.retrieval.parsers.base import DocumentError, Segment, TextBuilder
from lector.retrieval.parsers.budget import Meter, ParseBudget, expands_reason

log = logging.getLogger(__name__)


def parse_pdf(data: bytes, path: str, meter: Meter | None = None) -> tuple[str, list[Segment]]:
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    meter = meter or Meter(path, ParseBudget())
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentError(path, "corrupt PDF (no %PDF header)")
    try:
        return _read_pages(_open(data, path), path, meter)
    except DocumentError:
        raise
    except LimitReachedError as exc:
        raise DocumentError(path, _limit_reason(exc)) from exc
    except FileNotDecryptedError as exc:
        raise DocumentError(path, "encrypted PDF (password-protected)") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise DocumentError(path, f"corrupt PDF: {exc}") from exc


def _limit_reason(exc: Exception) -> str:
    from pypdf import Configuration

    if "decompress" in str(exc).lower():
        return "a compressed stream " + expands_reason(Configuration().zlib_maximum_output_length)
    return f"more than pypdf reads in one document ({exc})"


def _open(data: bytes, path: str) -> Any:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception as exc:  # missing crypto backend, unknown algorithm
            raise DocumentError(path, f"encrypted PDF that cannot be opened: {exc}") from exc
        if not opened:
            raise DocumentError(path, "encrypted PDF (password-protected)")
    return reader


def _read_pages(reader: Any, path: str, meter: Meter) -> tuple[str, list[Segment]]:
    from pypdf.errors import LimitReachedError

    builder = TextBuilder(meter=meter)
    for number, page in enumerate(reader.pages, start=1):
        meter.check_time()
        _decode_contents(page)
        try:
            text = page.extract_text() or ""
        except LimitReachedError:
            raise
        except Exception as exc:  # one bad page should not lose the others
            log.warning("%s: page %d unreadable: %s", path, number, exc)
            continue
        builder.add(text, number, None)
    return builder.text(), builder.segments


def _decode_contents(page: Any) -> None:
    """Decode the page's content streams, so that a stream past pypdf's limits raises (extract_text hides it)."""
    from pypdf.errors import LimitReachedError

    try:
        contents = page.get_contents()
        if contents is not None:
            contents.get_data()
    except LimitReachedError:
        raise
    except Exception:  # damage is for extract_text to report or survive
        return
