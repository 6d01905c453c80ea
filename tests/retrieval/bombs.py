"""Hostile documents made on the spot: small files that expand to gigabytes, or take forever to read.

Every builder writes its file under the given folder and returns the path. The office bombs are real
packages (a template saved by python-docx, python-pptx or openpyxl, one part replaced by ZIP_DEFLATED
repetitive XML), so any reader opens them, and one that reads without a bound expands them.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

MIB = 1024 * 1024
GIB = 1024 * MIB

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"


def _template(kind: str) -> dict[str, bytes]:
    """The parts of a small real package made by python-docx, python-pptx or openpyxl, so any reader opens it."""
    buffer = io.BytesIO()
    if kind == "docx":
        import docx

        docx.Document().save(buffer)
    elif kind == "pptx":
        from pptx import Presentation

        presentation = Presentation()
        presentation.slides.add_slide(presentation.slide_layouts[6])
        presentation.save(buffer)
    else:
        import openpyxl

        openpyxl.Workbook().save(buffer)
    with zipfile.ZipFile(buffer) as package:
        return {name: package.read(name) for name in package.namelist()}


def _repeat(head: str, unit: str, tail: str, size: int) -> Iterator[bytes]:
    """`head`, then `unit` repeated until about `size` bytes, then `tail`, in blocks of about 1 MiB."""
    yield head.encode()
    block = (unit * max(1, MIB // len(unit))).encode()
    for _ in range(max(1, size // len(block))):
        yield block
    yield tail.encode()


def _write_zip(path: Path, kind: str, big_name: str, big: Iterator[bytes]) -> Path:
    """The template package of `kind` with its part `big_name` replaced by the streamed `big`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        for name, data in _template(kind).items():
            if name != big_name:
                package.writestr(name, data)
        with package.open(big_name, "w", force_zip64=True) as member:
            for block in big:
                member.write(block)
    return path


def docx_bomb(folder: Path, size: int = GIB) -> Path:
    """One paragraph whose text run expands to `size` bytes."""
    head, tail = f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>', "</w:t></w:r></w:p></w:body></w:document>"
    return _write_zip(folder / "bomb.docx", "docx", "word/document.xml", _repeat(head, "a" * 64, tail, size))


def docx_paragraphs(folder: Path, size: int = 256 * MIB) -> Path:
    """Millions of one-letter paragraphs."""
    paragraph = "<w:p><w:r><w:t>a</w:t></w:r></w:p>"
    body = _repeat(f'<w:document xmlns:w="{W_NS}"><w:body>', paragraph, "</w:body></w:document>", size)
    return _write_zip(folder / "paragraphs.docx", "docx", "word/document.xml", body)


def xlsx_sheet(folder: Path, size: int = 512 * MIB) -> Path:
    """One sheet of millions of rows."""
    row = '<row><c t="inlineStr"><is><t>cell</t></is></c><c><v>42</v></c></row>'
    sheet = _repeat(f'<worksheet xmlns="{S_NS}"><sheetData>', row, "</sheetData></worksheet>", size)
    return _write_zip(folder / "rows.xlsx", "xlsx", "xl/worksheets/sheet1.xml", sheet)


def pptx_bomb(folder: Path, size: int = GIB) -> Path:
    """One slide whose text expands to `size` bytes."""
    head = f'<p:sld xmlns:p="{P_NS}" xmlns:a="{A_NS}"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>'
    slide = _repeat(head, "b" * 64, "</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>", size)
    return _write_zip(folder / "bomb.pptx", "pptx", "ppt/slides/slide1.xml", slide)


def forged_docx(folder: Path, size: int = GIB, declared: int = 10_000) -> Path:
    """A docx bomb whose central directory claims `declared` bytes for word/document.xml (and a fitting CRC)."""
    path = docx_bomb(folder, size)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as package:
        info = package.getinfo("word/document.xml")
        with package.open(info) as member:
            head = member.read(declared)
    entry = _central_entry(data, "word/document.xml")
    struct.pack_into("<I", data, entry + 16, zlib.crc32(head))
    _set_central_size(data, entry, declared)
    forged = folder / "forged.docx"
    forged.write_bytes(bytes(data))
    return forged


def _central_entry(data: bytearray, name: str) -> int:
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + name_length] == name.encode():
            return offset
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise ValueError(f"no central directory entry for {name}")


def _set_central_size(data: bytearray, entry: int, size: int) -> None:
    """The uncompressed size in the entry, or in its zip64 extra field when the entry uses one."""
    if struct.unpack_from("<I", data, entry + 24)[0] != 0xFFFFFFFF:
        struct.pack_into("<I", data, entry + 24, size)
        return
    name_length, extra_length = struct.unpack_from("<HH", data, entry + 28)
    extra = entry + 46 + name_length
    end = extra + extra_length
    while extra < end:
        tag, length = struct.unpack_from("<HH", data, extra)
        if tag == 1:
            struct.pack_into("<Q", data, extra + 4, size)
            return
        extra += 4 + length
    raise ValueError("no zip64 size to forge")


def docx_entities(folder: Path) -> Path:
    """Billion laughs: nested entity definitions in word/document.xml."""
    entities = ['<!ENTITY e0 "lol">'] + [f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10)]
    body = (
        f'<?xml version="1.0"?><!DOCTYPE d [{"".join(entities)}]>'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>&e9;</w:t></w:r></w:p></w:body></w:document>'
    )
    return _write_zip(folder / "laughs.docx", "docx", "word/document.xml", iter([body.encode()]))


def pdf_flate_bomb(folder: Path, size: int = GIB) -> Path:
    """A one-page PDF whose content stream is FlateDecode of `size` bytes of text operators."""
    compressor = zlib.compressobj(9)
    unit = b"(a) Tj " * (MIB // 7)
    stream = b"".join(compressor.compress(unit) for _ in range(size // len(unit))) + compressor.flush()
    return _write_pdf(folder / "bomb.pdf", stream)


def pdf_slow_page(folder: Path, operators: int = 600_000, pages: int = 1) -> Path:
    """A PDF within pypdf's limits whose every page takes pypdf many seconds to read."""
    stream = zlib.compress(b"BT /F1 12 Tf 10 10 Td " + b"(a) Tj " * operators + b"ET")
    return _write_pdf(folder / "slow.pdf", stream, pages)


def pdf_slow_pages(folder: Path) -> Path:
    """Three slow pages: more than the default time budget in all."""
    return pdf_slow_page(folder, pages=3)


def _write_pdf(path: Path, content: bytes, pages: int = 1) -> Path:
    """A PDF of `pages` pages (objects 4 on) that all draw the one content stream (object 3)."""
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    font = b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R %s >>" % font] * pages
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


BOMBS: dict[str, Callable[[Path], Path]] = {
    "docx expanding to 1 GiB": docx_bomb,
    "docx of tiny paragraphs": docx_paragraphs,
    "xlsx of a huge sheet": xlsx_sheet,
    "pptx expanding to 1 GiB": pptx_bomb,
    "docx with a forged declared size": forged_docx,
    "docx with nested entities": docx_entities,
    "pdf with a FlateDecode bomb": pdf_flate_bomb,
}
"""Name -> builder of the documents that expand past any budget, for the tests and bench/hostile_ingest.py."""
TIME_BOMBS: dict[str, Callable[[Path], Path]] = {"pdf of pages that take long to read": pdf_slow_pages}
"""Documents within the size limits that take longer than the time budget."""
