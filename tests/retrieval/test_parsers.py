"""Parsers: every format from fixtures generated here, locations, and the error cases."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from lector.retrieval.parsers import DocumentError, ParsedDocument, parse_bytes, parse_file, parse_text
from lector.retrieval.parsers.base import content_hash


def _check_segments(doc: ParsedDocument) -> None:
    previous_end = 0
    for seg in doc.segments:
        assert 0 <= seg.start < seg.end <= len(doc.text)
        assert seg.start >= previous_end
        previous_end = seg.end


def _section_of(doc: ParsedDocument, needle: str) -> tuple[int | None, str | None]:
    offset = doc.text.index(needle)
    return doc.location(offset)


# --- plain text ---------------------------------------------------------------------------------------


def test_txt_utf8_keeps_text_and_hashes_bytes(tmp_path: Path) -> None:
    data = "Line one.\r\nLine two, naïve café.\r\n".encode()
    path = tmp_path / "a.txt"
    path.write_bytes(data)
    doc = parse_file(path)
    assert doc.text == data.decode("utf-8")
    assert doc.doc_id == content_hash(data)
    assert doc.format == "txt" and doc.source == str(path)
    _check_segments(doc)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_txt_with_bom(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("中文和English混合。".encode(encoding))
    assert parse_file(path).text == "中文和English混合。"


def test_txt_legacy_encoding_is_detected(tmp_path: Path) -> None:
    text = "Le garçon a mangé une crème brûlée à la fenêtre de l'hôtel. " * 20
    path = tmp_path / "latin.txt"
    path.write_bytes(text.encode("cp1252"))
    assert "crème brûlée" in parse_file(path).text


def test_txt_chinese_legacy_encoding(tmp_path: Path) -> None:
    text = "这是一个关于文档检索的测试。我们需要确保中文编码能够被正确识别，否则搜索就会失败。" * 5
    path = tmp_path / "gbk.txt"
    path.write_bytes(text.encode("gb18030"))
    assert parse_file(path).text == text


def test_markdown_headings_become_sections(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(
        "# Guide\n\nIntro text.\n\n## Install\n\nRun pip.\n\n```\n# not a heading\n```\n\n"
        "### Linux\n\nUse apt.\n\n## Usage\n\nCall it.\n",
        encoding="utf-8",
    )
    doc = parse_file(path)
    assert doc.format == "md"
    assert _section_of(doc, "Intro text") == (None, "Guide")
    assert _section_of(doc, "not a heading") == (None, "Guide > Install")
    assert _section_of(doc, "Use apt") == (None, "Guide > Install > Linux")
    assert _section_of(doc, "Call it") == (None, "Guide > Usage")
    _check_segments(doc)


def test_csv_and_tsv_rows_carry_their_header(tmp_path: Path) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text('name,city\nAda,London\n"Lin, Bo",Beijing\n', encoding="utf-8")
    doc = parse_file(csv_path)
    assert doc.text.splitlines() == ["name | city", "name: Ada | city: London", "name: Lin, Bo | city: Beijing"]
    tsv_path = tmp_path / "people.tsv"
    tsv_path.write_text("name\tage\nAda\t36\n", encoding="utf-8")
    assert "name: Ada | age: 36" in parse_file(tsv_path).text


# --- html ---------------------------------------------------------------------------------------------

HTML = """<!doctype html><html><head><title>Page title</title><style>p {color: red}</style>
<script>var secret = "do not index";</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Main heading</h1><p>First paragraph with <b>bold</b> text.</p>
<h2>Details</h2><p>Second paragraph.</p><ul><li>item one</li><li>item two</li></ul>
<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>
<pre>code  block
  indented</pre><footer>Copyright footer</footer></body></html>"""


def test_html_readable_text_with_sections(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    doc = parse_file(path)
    assert doc.format == "html"
    assert "First paragraph with bold text." in doc.text
    assert "item one" in doc.text and "k | v" in doc.text and "a | 1" in doc.text
    assert "code  block\n  indented" in doc.text
    for junk in ("do not index", "color: red", "Home", "Copyright footer"):
        assert junk not in doc.text
    assert _section_of(doc, "First paragraph") == (None, "Main heading")
    assert _section_of(doc, "item two") == (None, "Main heading > Details")
    _check_segments(doc)


def test_parse_text_for_extension_pages() -> None:
    doc = parse_text(HTML, "https://example.org/page", format="html")
    assert doc.source == "https://example.org/page"
    assert doc.doc_id == content_hash(HTML.encode("utf-8"))
    assert "Second paragraph." in doc.text
    md = parse_text("# T\n\nbody", "note", format="md")
    assert md.location(md.text.index("body")) == (None, "T")
    assert parse_text("just text", "t").text == "just text"
    with pytest.raises(DocumentError, match="empty"):
        parse_text("   \n", "blank")
    with pytest.raises(DocumentError, match="unsupported"):
        parse_text("x", "y", format="pdf")


# --- pdf ----------------------------------------------------------------------------------------------


def _pdf_bytes(pages: list[str]) -> bytes:
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 (a dev dependency) writes the PDF fixtures")
    pdf = fpdf.FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def test_pdf_pages(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(_pdf_bytes(["Alpha page talks about turbines.", "Beta page covers gearboxes.", "Gamma."]))
    doc = parse_file(path)
    assert doc.format == "pdf"
    assert _section_of(doc, "turbines")[0] == 1
    assert _section_of(doc, "gearboxes")[0] == 2
    assert _section_of(doc, "Gamma")[0] == 3
    _check_segments(doc)


def test_pdf_encrypted_corrupt_and_textless(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_pdf_bytes(["Secret text."]))).pages:
        writer.add_page(page)
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(buffer.getvalue())
    with pytest.raises(DocumentError, match="encrypted") as info:
        parse_file(locked)
    assert info.value.path == str(locked) and str(locked) in str(info.value)

    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref")
    with pytest.raises(DocumentError, match="corrupt|no extractable"):
        parse_file(corrupt)

    blank = tmp_path / "scan.pdf"
    blank.write_bytes(_pdf_bytes(["", ""]))
    with pytest.raises(DocumentError, match="no extractable text"):
        parse_file(blank)


# --- office -------------------------------------------------------------------------------------------


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Annual report", level=0)
    document.add_paragraph("Opening words.")
    document.add_heading("Finance", level=1)
    document.add_paragraph("Revenue grew strongly.")
    document.add_heading("Costs", level=2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "item", "amount"
    table.cell(1, 0).text, table.cell(1, 1).text = "rent", "1200"
    document.add_heading("Outlook", level=1)
    document.add_paragraph("Cautious optimism.")
    path = tmp_path / "report.docx"
    document.save(str(path))
    doc = parse_file(path)
    assert doc.format == "docx"
    assert _section_of(doc, "Opening words")[1] == "Annual report"
    assert _section_of(doc, "Revenue grew")[1] == "Annual report > Finance"
    assert _section_of(doc, "item: rent | amount: 1200")[1] == "Annual report > Finance > Costs"
    assert _section_of(doc, "Cautious")[1] == "Annual report > Outlook"
    _check_segments(doc)


def test_pptx_slide_is_page(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    for title, body in [("Roadmap", "Ship the reader in March."), ("Risks", "The model is small.")]:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Numbers"
    shape = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    shape.table.cell(0, 0).text, shape.table.cell(0, 1).text = "metric", "value"
    shape.table.cell(1, 0).text, shape.table.cell(1, 1).text = "users", "42"
    slide.notes_slide.notes_text_frame.text = "Say the number slowly."
    path = tmp_path / "deck.pptx"
    presentation.save(str(path))
    doc = parse_file(path)
    assert _section_of(doc, "Ship the reader") == (1, "Roadmap")
    assert _section_of(doc, "model is small") == (2, "Risks")
    assert _section_of(doc, "metric: users | value: 42") == (3, "Numbers")
    assert _section_of(doc, "Say the number") == (3, "Numbers")


def test_xlsx_sheet_is_page_and_section(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Sales"
    first.append(["region", "total"])
    first.append(["north", 120])
    second = workbook.create_sheet("Staff")
    second.append(["name", "role"])
    second.append(["Ada", "engineer"])
    path = tmp_path / "book.xlsx"
    workbook.save(str(path))
    doc = parse_file(path)
    assert doc.format == "xlsx"
    assert _section_of(doc, "region: north | total: 120") == (1, "Sales")
    assert _section_of(doc, "name: Ada | role: engineer") == (2, "Staff")


def test_xlsx_cells_of_every_kind(tmp_path: Path) -> None:
    import datetime as dt

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["when", "done", "ratio", "", "note"])
    sheet.append([dt.date(2024, 3, 15), True, 0.25, None, "gap before me"])
    sheet["B3"] = "second column only"
    path = tmp_path / "kinds.xlsx"
    workbook.save(str(path))
    text = parse_file(path).text
    assert "when: 2024-03-15 00:00:00 | done: True | ratio: 0.25 | note: gap before me" in text
    assert "done: second column only" in text


def test_docx_tabs_breaks_and_styles_without_a_styles_part(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Plan", level=1)
    run = document.add_paragraph().add_run("left")
    run.add_tab()
    run.add_text("right")
    run.add_break()
    run.add_text("next line")
    path = tmp_path / "plan.docx"
    document.save(str(path))
    doc = parse_file(path)
    assert "left\tright\nnext line" in doc.text and _section_of(doc, "next line")[1] == "Plan"
    stripped = tmp_path / "plain.docx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stripped, "w") as target:
        for name in source.namelist():
            if name != "word/styles.xml":
                target.writestr(name, source.read(name))
    assert _section_of(parse_file(stripped), "next line")[1] == "Plan"  # the built-in style id Heading1


def test_pptx_group_shapes_and_a_title_after_other_shapes(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(2), Inches(1)).text_frame.text = "inside the group"
    slide.shapes.title.text = "Grouped"
    spTree = slide.shapes._spTree
    spTree.append(spTree[2])  # the title placeholder now comes after the group
    path = tmp_path / "group.pptx"
    presentation.save(str(path))
    assert _section_of(parse_file(path), "inside the group") == (1, "Grouped")


@pytest.mark.parametrize("ext", ["docx", "pptx", "xlsx"])
def test_office_corrupt_and_encrypted(tmp_path: Path, ext: str) -> None:
    corrupt = tmp_path / f"bad.{ext}"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip file at all")
    with pytest.raises(DocumentError, match="corrupt"):
        parse_file(corrupt)
    # password-protected Office files are OLE compound files, not zip packages
    locked = tmp_path / f"locked.{ext}"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    with pytest.raises(DocumentError, match="encrypted"):
        parse_file(locked)


# --- errors -------------------------------------------------------------------------------------------


def test_empty_oversized_unsupported_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DocumentError, match="empty"):
        parse_file(empty)
    whitespace = tmp_path / "blank.md"
    whitespace.write_text("\n\n   \n")
    with pytest.raises(DocumentError, match="empty"):
        parse_file(whitespace)

    big = tmp_path / "big.txt"
    big.write_text("x" * 1000)
    with pytest.raises(DocumentError, match="too large") as info:
        parse_file(big, max_bytes=100)
    assert "big.txt" in str(info.value)

    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02\x03" * 100)
    with pytest.raises(DocumentError, match="unsupported"):
        parse_file(binary)
    legacy = tmp_path / "old.doc"
    legacy.write_bytes(b"not OLE but an old extension")
    with pytest.raises(DocumentError, match="unsupported"):
        parse_file(legacy)
    with pytest.raises(DocumentError, match="not found"):
        parse_file(tmp_path / "missing.pdf")


def test_unknown_extension_that_is_text_is_read_as_text() -> None:
    doc = parse_bytes(b"Some notes\nwith lines", "NOTES")
    assert doc.format == "txt" and doc.text == "Some notes\nwith lines"


def test_oversized_limit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTOR_MAX_DOC_BYTES", "10")
    path = tmp_path / "a.txt"
    path.write_text("more than ten bytes")
    with pytest.raises(DocumentError, match="too large"):
        parse_file(path)
