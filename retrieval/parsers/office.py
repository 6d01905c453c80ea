"""Office Open XML: docx (headings as sections), pptx (slide = page), xlsx (sheet = page and section)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from lector.retrieval.parsers.base import DocumentError, Segment, TextBuilder
from lector.retrieval.parsers.text import row_line

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_container(data: bytes, path: str, kind: str) -> None:
    if data.startswith(OLE_MAGIC):
        raise DocumentError(path, f"encrypted (password-protected) or legacy binary {kind} file")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise DocumentError(path, f"corrupt {kind} file (not a valid zip container)")


def _open_error(path: str, kind: str, exc: Exception) -> DocumentError:
    return DocumentError(path, f"corrupt {kind} file: {type(exc).__name__}: {exc}")


def parse_docx(data: bytes, path: str) -> tuple[str, list[Segment]]:
    check_container(data, path, "docx")
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds on a damaged package
        raise _open_error(path, "docx", exc) from exc
    builder = TextBuilder()
    headings: list[tuple[int, str]] = []

    def section() -> str | None:
        return " > ".join(t for _, t in headings) or None

    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(block, document)
            text = paragraph.text
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            level = _heading_level(style)
            if level is not None and text.strip():
                headings = [(lvl, t) for lvl, t in headings if lvl < level] + [(level, text.strip())]
            builder.add(text, None, section())
        elif tag == "tbl":
            table = Table(block, document)
            rows = [[cell.text.strip() for cell in row.cells] for row in table.rows]
            if rows:
                lines = [" | ".join(rows[0])] + [row_line(rows[0], r) for r in rows[1:]]
                builder.add("\n".join(line for line in lines if line), None, section())
    return builder.text(), builder.segments


def _heading_level(style: str) -> int | None:
    if style == "Title":
        return 0
    if style.startswith("Heading"):
        digits = style.removeprefix("Heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def parse_pptx(data: bytes, path: str) -> tuple[str, list[Segment]]:
    check_container(data, path, "pptx")
    try:
        from pptx import Presentation

        presentation = Presentation(io.BytesIO(data))
    except Exception as exc:
        raise _open_error(path, "pptx", exc) from exc
    builder = TextBuilder()
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else None
        for shape in slide.shapes:
            for text in _shape_texts(shape):
                builder.add(text, number, title or None)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text
            if notes.strip():
                builder.add(f"Notes: {notes}", number, title or None)
    return builder.text(), builder.segments


def _shape_texts(shape: Any) -> list[str]:
    texts: list[str] = []
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        texts.append(shape.text_frame.text)
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text.strip() for cell in row.cells] for row in shape.table.rows]
        if rows:
            texts.append("\n".join([" | ".join(rows[0])] + [row_line(rows[0], r) for r in rows[1:]]))
    for child in getattr(shape, "shapes", []) or []:  # group shapes
        texts.extend(_shape_texts(child))
    return texts


def parse_xlsx(data: bytes, path: str) -> tuple[str, list[Segment]]:
    check_container(data, path, "xlsx")
    try:
        import openpyxl

        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise _open_error(path, "xlsx", exc) from exc
    builder = TextBuilder(separator="\n")
    try:
        for number, sheet in enumerate(workbook.worksheets, start=1):
            header: list[str] | None = None
            for row in sheet.iter_rows(values_only=True):
                cells = ["" if v is None else str(v) for v in row]
                if not any(c.strip() for c in cells):
                    continue
                if header is None:
                    header = cells
                    builder.add(" | ".join(c.strip() for c in cells if c.strip()), number, sheet.title)
                else:
                    builder.add(row_line(header, cells), number, sheet.title)
    finally:
        workbook.close()
    return builder.text(), builder.segments
