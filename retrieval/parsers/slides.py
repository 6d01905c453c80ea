"""pptx: one page per slide, in the presentation's order; the slide's title is its section; notes follow."""

from __future__ import annotations

from lector.retrieval.parsers.base import Segment, TextBuilder
from lector.retrieval.parsers.budget import Meter
from lector.retrieval.parsers.ooxml import Element, children_at, main_part, relationships, root_of, run_text, tag
from lector.retrieval.parsers.text import row_line
from lector.retrieval.parsers.zip_guard import Package

_SP, _FRAME, _GROUP = tag("p:sp"), tag("p:graphicFrame"), tag("p:grpSp")
_TX_BODY, _PARAGRAPH, _TEXT, _BREAK = tag("p:txBody"), tag("a:p"), tag("a:t"), tag("a:br")
_TR, _TC = tag("a:tr"), tag("a:tc")
_TITLES = ("title", "ctrTitle")


def parse_pptx(data: bytes, path: str, meter: Meter) -> tuple[str, list[Segment]]:
    package = Package(data, meter, "pptx")
    builder = TextBuilder(meter=meter)
    try:
        for number, slide in enumerate(_slide_parts(package), start=1):
            title, texts = _slide_texts(package, slide)
            for text in texts:
                builder.add(text, number, title)
            notes = _notes(package, slide)
            if notes.strip():
                builder.add(f"Notes: {notes}", number, title)
    finally:
        package.close()
    return builder.text(), builder.segments


def _slide_parts(package: Package) -> list[str]:
    presentation = main_part(package, "ppt/presentation.xml")
    rels = relationships(package, presentation)
    listed = root_of(package, presentation).find(tag("p:sldIdLst"))
    ids = [] if listed is None else [s.get(tag("r:id")) for s in listed.iterchildren(tag("p:sldId"))]
    return [rels[i][1] for i in ids if i in rels and rels[i][1] in package.names]


def _slide_texts(package: Package, slide: str) -> tuple[str | None, list[str]]:
    """The slide's title and the texts of its shapes, in order (a title may come after other shapes)."""
    title: str | None = None
    texts: list[str] = []
    for shape in children_at(package, slide, "p:spTree"):
        if title is None and _placeholder_type(shape) in _TITLES:
            title = _frame_text(shape).strip() or None
        texts.extend(_shape_texts(shape))
    return title, texts


def _shape_texts(shape: Element) -> list[str]:
    if shape.tag == _SP:
        return [_frame_text(shape)]
    if shape.tag == _FRAME:
        return [_table_text(table) for table in shape.iter(tag("a:tbl"))]
    if shape.tag == _GROUP:
        return [text for child in shape for text in _shape_texts(child)]
    return []


def _frame_text(shape: Element) -> str:
    body = shape.find(_TX_BODY)
    if body is None:
        return ""
    return "\n".join(run_text(p, _TEXT, (_BREAK,)) for p in body.iterchildren(_PARAGRAPH))


def _table_text(table: Element) -> str:
    rows = [[_cell_text(cell) for cell in row.iterchildren(_TC)] for row in table.iterchildren(_TR)]
    if not rows:
        return ""
    return "\n".join([" | ".join(rows[0])] + [row_line(rows[0], r) for r in rows[1:]])


def _cell_text(cell: Element) -> str:
    body = cell.find(tag("a:txBody"))
    if body is None:
        return ""
    return "\n".join(run_text(p, _TEXT, (_BREAK,)) for p in body.iterchildren(_PARAGRAPH)).strip()


def _placeholder_type(shape: Element) -> str | None:
    placeholder = shape.find(f"{tag('p:nvSpPr')}/{tag('p:nvPr')}/{tag('p:ph')}")
    return None if placeholder is None else placeholder.get("type", "obj")


def _notes(package: Package, slide: str) -> str:
    notes = [target for kind, target in relationships(package, slide).values() if kind == "notesSlide"]
    if not notes or notes[0] not in package.names:
        return ""
    for shape in children_at(package, notes[0], "p:spTree"):
        if shape.tag == _SP and _placeholder_type(shape) == "body":
            return _frame_text(shape)
    return ""
