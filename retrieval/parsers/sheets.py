"""xlsx: one page and section per sheet; each row "header: value | ...", read as a stream of rows."""

from __future__ import annotations

import datetime as dt
import re

from lector.retrieval.parsers.base import Segment, TextBuilder
from lector.retrieval.parsers.budget import Meter
from lector.retrieval.parsers.ooxml import Element, children_at, main_part, relationships, root_of, tag
from lector.retrieval.parsers.text import row_line
from lector.retrieval.parsers.zip_guard import Package

_C, _V, _T, _IS, _RPH = tag("s:c"), tag("s:v"), tag("s:t"), tag("s:is"), tag("s:rPh")
_COLUMN = re.compile(r"[A-Z]+")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_xlsx(data: bytes, path: str, meter: Meter) -> tuple[str, list[Segment]]:
    package = Package(data, meter, "xlsx")
    builder = TextBuilder(separator="\n", meter=meter)
    try:
        book = _Workbook(package)
        for number, (name, part) in enumerate(book.sheets, start=1):
            header: list[str] | None = None
            for row in children_at(package, part, "s:sheetData"):
                cells = book.row_values(row)
                if not any(c.strip() for c in cells):
                    continue
                if header is None:
                    header = cells
                    builder.add(" | ".join(c.strip() for c in cells if c.strip()), number, name)
                else:
                    builder.add(row_line(header, cells), number, name)
    finally:
        package.close()
    return builder.text(), builder.segments


class _Workbook:
    """What reading the sheets needs: their names and parts, the shared strings, which styles are dates."""

    def __init__(self, package: Package) -> None:
        part = main_part(package, "xl/workbook.xml")
        rels = relationships(package, part)
        root = root_of(package, part)
        sheets = root.find(tag("s:sheets"))
        listed = [] if sheets is None else list(sheets.iterchildren(tag("s:sheet")))
        named = [(s.get("name", ""), rels[s.get(tag("r:id"))][1]) for s in listed if s.get(tag("r:id")) in rels]
        self.sheets = [(name, target) for name, target in named if target in package.names]
        properties = root.find(tag("s:workbookPr"))
        in_1904 = properties is not None and properties.get("date1904") in ("1", "true")
        self.epoch = dt.datetime(1904, 1, 1) if in_1904 else None
        targets = {kind: target for kind, target in rels.values()}
        self.shared = _shared_strings(package, targets.get("sharedStrings"))
        self.dates = _date_styles(package, targets.get("styles"))

    def row_values(self, row: Element) -> list[str]:
        values: list[str] = []
        for cell in row.iterchildren(_C):
            column = _column(cell.get("r"), len(values))
            values.extend([""] * (column - len(values)))
            values.append(self.value(cell))
        return values

    def value(self, cell: Element) -> str:
        kind = cell.get("t", "n")
        if kind == "inlineStr":
            inline = cell.find(_IS)
            return "" if inline is None else _string(inline)
        found = cell.find(_V)
        text = found.text if found is not None and found.text is not None else ""
        if kind == "s":
            index = int(text) if text.isdigit() else -1
            return self.shared[index] if 0 <= index < len(self.shared) else ""
        if kind == "b":
            return "True" if text.strip() == "1" else "False"
        if kind != "n" or not _NUMBER.fullmatch(text.strip()):
            return text
        return self._number(text.strip(), cell.get("s"))

    def _number(self, text: str, style: str | None) -> str:
        number = float(text)
        if style is not None and style.isdigit() and int(style) in self.dates:
            try:
                return str(_from_excel(number, self.epoch))
            except (OverflowError, ValueError):
                pass
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else str(number)


def _from_excel(serial: float, epoch: dt.datetime | None) -> dt.datetime:
    from openpyxl.utils.datetime import from_excel

    if epoch is None:
        return from_excel(serial)
    return from_excel(serial, epoch)


def _column(reference: str | None, position: int) -> int:
    """0-based column of a cell reference such as 'AB12'; the next position when there is none."""
    match = _COLUMN.match(reference or "")
    if match is None:
        return position
    index = 0
    for letter in match.group():
        index = index * 26 + ord(letter) - ord("A") + 1
    return max(index - 1, position)


def _string(item: Element) -> str:
    """The text of a string item: its runs, without the phonetic guides."""
    return "".join(t.text or "" for t in item.iter(_T) if t.getparent().tag != _RPH)


def _shared_strings(package: Package, part: str | None) -> list[str]:
    if part is None or part not in package.names:
        return []
    strings: list[str] = []
    for item in children_at(package, part, "s:sst"):
        text = _string(item)
        package.meter.add_chars(len(text))
        strings.append(text)
    return strings


def _date_styles(package: Package, part: str | None) -> set[int]:
    """Indexes of the cell styles whose number format shows a date."""
    if part is None or part not in package.names:
        return set()
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format

    root = root_of(package, part)
    formats = dict(BUILTIN_FORMATS)
    for custom in root.iter(tag("s:numFmt")):
        if custom.get("numFmtId", "").isdigit():
            formats[int(custom.get("numFmtId"))] = custom.get("formatCode", "")
    styles = root.find(tag("s:cellXfs"))
    ids = [] if styles is None else [xf.get("numFmtId", "0") for xf in styles.iterchildren(tag("s:xf"))]
    return {i for i, fmt in enumerate(ids) if fmt.isdigit() and is_date_format(formats.get(int(fmt), ""))}
