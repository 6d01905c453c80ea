"""Decompression bombs and budgets: every hostile document is refused quickly, in bounded memory, with a reason.

The bombs are generated here (tests/retrieval/bombs.py): small files that expand to hundreds of MB or GB.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import time
import zipfile
from pathlib import Path

import pytest

from lector.retrieval.parsers import DocumentError, ParseBudget, parse_bytes
from lector.retrieval.parsers.isolated import parse_bounded, parse_in_child
from tests.retrieval.bombs import BOMBS, MIB, W_NS, pdf_slow_page

REFUSAL_SECONDS = 5.0
PEAK_RSS_BYTES = 500 * MIB
REASONS = {
    "docx with a forged declared size": "corrupt|expands",
    "docx with nested entities": "declares a DTD",
}


@pytest.fixture(scope="session")
def bomb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {name: build(folder) for name, build in BOMBS.items()}


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))


def _reset_peak_rss() -> int:
    """Start measuring this process's peak memory afresh (Linux: clear_refs 5); the resident memory now."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:  # the lifetime peak then stands in, which is only stricter
        pass
    return _status_bytes("VmRSS")


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_in_process_quickly_and_in_bounded_memory(bomb_files: dict[str, Path], name: str) -> None:
    path = bomb_files[name]
    data = path.read_bytes()
    before = _reset_peak_rss()
    started = time.monotonic()
    with pytest.raises(DocumentError, match=REASONS.get(name, "expands")) as info:
        parse_bytes(data, path.name)
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert _status_bytes("VmHWM") - before < PEAK_RSS_BYTES
    assert info.value.path == path.name and len(info.value.reason) < 300


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_by_the_child_worker(bomb_files: dict[str, Path], name: str) -> None:
    path = bomb_files[name]
    outcome = parse_in_child(path.read_bytes(), path.name, None, ParseBudget())
    assert outcome.document is None and outcome.error is not None
    assert outcome.seconds < REFUSAL_SECONDS
    assert 0 < outcome.peak_rss < PEAK_RSS_BYTES
    assert re.search(REASONS.get(name, "expands"), outcome.error.reason)


def _docx(paragraphs: list[str]) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("word/document.xml", f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>')
    return buffer.getvalue()


def test_the_characters_budget_stops_a_document_that_produces_too_much_text() -> None:
    data = _docx([f"paragraph number {i}" for i in range(2000)])
    with pytest.raises(DocumentError, match="more than 10,000 characters"):
        parse_bytes(data, "long.docx", budget=ParseBudget(max_chars=10_000))
    assert "paragraph number 1999" in parse_bytes(data, "long.docx").text


def test_the_expanded_bytes_budget_counts_every_member_read() -> None:
    data = _docx([f"distinct words {i} " * 5 for i in range(5000)])
    with pytest.raises(DocumentError, match=r"expands to more than 0\.1 MB"):
        parse_bytes(data, "wide.docx", budget=ParseBudget(max_expanded_bytes=100_000))


def test_the_ratio_check_reads_ordinary_text_and_refuses_repetition() -> None:
    ordinary = _docx([f"Paragraph {i} reports {i * 7 % 101} units sold in region {i % 13}." for i in range(40_000)])
    assert parse_bytes(ordinary, "sales.docx").text.count("Paragraph") == 40_000
    repetitive = _docx(["the same line again"] * 200_000)
    with pytest.raises(DocumentError, match="expands more than 100 times its compressed size"):
        parse_bytes(repetitive, "same.docx")


def test_compressed_text_is_not_expanded() -> None:
    packed = gzip.compress(b"a" * 50_000_000)
    with pytest.raises(DocumentError, match="unsupported format .gz"):
        parse_bytes(packed, "notes.txt.gz")


def test_the_time_budget_stops_the_parse_with_its_reason() -> None:
    data = _docx([f"sentence {i} of a long report" for i in range(200_000)])
    started = time.monotonic()
    with pytest.raises(DocumentError, match=r"parsing stopped after 0\.2 s"):
        parse_bytes(data, "slow.docx", budget=ParseBudget(seconds=0.2))
    assert time.monotonic() - started < 2


def test_the_child_is_killed_at_its_wall_clock_deadline(tmp_path: Path) -> None:
    path = pdf_slow_page(tmp_path)  # one page that pypdf reads for many seconds, with no chance to look at the clock
    outcome = parse_in_child(path.read_bytes(), "slow.pdf", None, ParseBudget(seconds=0.5))
    assert outcome.error is not None and "parsing stopped after 0.5 s" in outcome.error.reason
    assert outcome.seconds < 3


def test_the_child_memory_limit_refuses_a_document_that_needs_too_much() -> None:
    runs = "</w:t></w:r><w:r><w:t>".join(os.urandom(40).hex() for _ in range(200_000))
    data = _docx([runs])  # one paragraph of distinct runs, held whole while it is read
    outcome = parse_in_child(data, "big.docx", None, ParseBudget(memory_bytes=40_000_000))
    assert outcome.error is not None and "needs more than 40 MB of memory" in outcome.error.reason


def test_a_normal_document_comes_back_from_the_child_whole() -> None:
    data = _docx(["Alpha paragraph.", "Beta paragraph with é and 中文."])
    doc = parse_bounded(data, "normal.docx")
    assert doc == parse_bytes(data, "normal.docx")
    assert doc.text == "Alpha paragraph.\n\nBeta paragraph with é and 中文." and doc.format == "docx"


def test_small_plain_text_reads_the_same_in_a_child_and_in_process() -> None:
    outcome = parse_in_child(b"# Title\n\nbody", "notes.md", None, ParseBudget())
    assert outcome.document is not None and outcome.document.text.startswith("# Title")
    assert parse_bounded(b"# Title\n\nbody", "notes.md") == outcome.document


def test_pypdf_limits_become_document_errors(bomb_files: dict[str, Path]) -> None:
    from lector.retrieval.parsers.pdf import parse_pdf

    path = bomb_files["pdf with a FlateDecode bomb"]
    with pytest.raises(DocumentError, match="expands to more than"):
        parse_pdf(path.read_bytes(), path.name)
