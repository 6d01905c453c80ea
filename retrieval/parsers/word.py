"""docx: paragraphs and tables of the body, read as a stream; heading styles give the sections."""

from __future__ import annotations

from lector.retrieval.parsers.base import Segment, TextBuilder
from lector.retrieval.parsers.budget import Meter
from lector.retrieval.parsers.ooxml import Element, children_at, main_part, root_of, run_text, tag
from lector.retrieval.parsers.text import row_line
from lector.retrieval.parsers.zip_guard import Package

_P, _TBL, _TR, _TC = tag("w:p"), tag("w:tbl"), tag("w:tr"), tag("w:tc")
_T, _BREAKS, _TABS = tag("w:t"), (tag("w:br"), tag("w:cr")), (tag("w:tab"),)
_VAL = tag("w:val")
_STYLE_PATH = f"{tag('w:pPr')}/{tag('w:pStyle')}"


def parse_docx(data: bytes, path: str, meter: Meter) -> tuple[str, list[Segment]]:
    package = Package(data, meter, "docx")
    try:
        document = main_part(package, "word/document.xml")
        reader = _Body(_heading_levels(package), TextBuilder(meter=meter))
        for block in children_at(package, document, "w:body"):
            reader.add(block)
    finally:
        package.close()
    return reader.builder.text(), reader.builder.segments


class _Body:
    def __init__(self, levels: dict[str, int], builder: TextBuilder) -> None:
        self.levels = levels
        self.builder = builder
        self.headings: list[tuple[int, str]] = []

    def section(self) -> str | None:
        return " > ".join(t for _, t in self.headings) or None

    def add(self, block: Element) -> None:
        if block.tag == _P:
            text = paragraph_text(block)
            level = self.levels.get(_style_id(block) or "")
            if level is not None and text.strip():
                self.headings = [(lvl, t) for lvl, t in self.headings if lvl < level] + [(level, text.strip())]
            self.builder.add(text, None, self.section())
        elif block.tag == _TBL:
            rows = [[_cell_text(cell) for cell in row.iterchildren(_TC)] for row in block.iterchildren(_TR)]
            if rows:
                lines = [" | ".join(rows[0])] + [row_line(rows[0], r) for r in rows[1:]]
                self.builder.add("\n".join(line for line in lines if line), None, self.section())


def paragraph_text(paragraph: Element) -> str:
    return run_text(paragraph, _T, _BREAKS, _TABS)


def _cell_text(cell: Element) -> str:
    return "\n".join(paragraph_text(p) for p in cell.iterchildren(_P)).strip()


def _style_id(paragraph: Element) -> str | None:
    style = paragraph.find(_STYLE_PATH)
    return None if style is None else style.get(_VAL)


def _heading_levels(package: Package) -> dict[str, int]:
    """Paragraph style id -> heading level (Title is 0), from the style names in word/styles.xml."""
    levels: dict[str, int] = {}
    if "word/styles.xml" in package.names:
        for style in root_of(package, "word/styles.xml").iterchildren(tag("w:style")):
            name = style.find(tag("w:name"))
            level = heading_level(name.get(_VAL, "") if name is not None else "")
            if level is not None and style.get(tag("w:styleId")):
                levels[style.get(tag("w:styleId"))] = level
    for style_id in ("Title", *(f"Heading{n}" for n in range(1, 10))):  # the built-in ids, when styles.xml is missing
        levels.setdefault(style_id, heading_level(style_id) or 0)
    return levels


def heading_level(style: str) -> int | None:
    """'Title' -> 0, 'heading 2' or 'Heading2' -> 2, anything else -> None."""
    name = style.strip().lower()
    if name == "title":
        return 0
    if name.startswith("heading"):
        digits = name.removeprefix("heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None
