"""Library: adding, the content-hash cache, multi-document search with a shared idf, reading chunks."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lector.retrieval.index import BM25Index
from lector.retrieval.ingest_progress import IngestStep
from lector.retrieval.library import Library
from lector.retrieval.parsers import DocumentError

SOLAR = "\n\n".join(
    f"Section {i}. Solar panels convert sunlight into electricity. The inverter number {i} changes direct "
    f"current into alternating current. Panel efficiency depends on temperature and shading."
    for i in range(60)
)
WIND = "\n\n".join(
    f"Part {i}. Wind turbines have three blades. The gearbox {i} raises the rotor speed for the generator. "
    "Offshore turbines face salt corrosion, and the inverter connects them to the grid."
    for i in range(60)
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"solar": tmp_path / "solar.txt", "wind": tmp_path / "wind.md"}
    paths["solar"].write_text(SOLAR, encoding="utf-8")
    paths["wind"].write_text("# Wind\n\n" + WIND, encoding="utf-8")
    return paths


def _library(tmp_path: Path, **kwargs: object) -> Library:
    return Library(cache_dir=tmp_path / "cache", target_tokens=128, overlap_tokens=16, **kwargs)  # type: ignore[arg-type]


def test_add_read_and_remove(tmp_path: Path, files: dict[str, Path]) -> None:
    lib = _library(tmp_path)
    solar = lib.add_file(files["solar"])
    wind = lib.add_file(files["wind"])
    assert {d.doc_id for d in lib.documents()} == {solar, wind} and len(lib) == 2
    info = lib.document(wind)
    assert info.format == "md" and info.source == str(files["wind"]) and info.chunks > 5
    chunks = lib.chunks(wind)
    assert len(chunks) == info.chunks
    text = lib.text(wind)
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.section == "Wind" and chunk.doc_id == wind
    assert lib.chunk(wind, 3) == chunks[3]
    assert [c.chunk_id for c in lib.neighbours(wind, 3)] == [2, 3, 4]
    assert [c.chunk_id for c in lib.neighbours(wind, 0, radius=2)] == [0, 1, 2]
    last = info.chunks - 1
    assert [c.chunk_id for c in lib.neighbours(wind, last)] == [last - 1, last]
    assert lib.total_tokens() == lib.total_tokens([solar]) + lib.total_tokens([wind])
    assert 1500 < lib.total_tokens([solar]) < 3000
    with pytest.raises(IndexError):
        lib.chunk(wind, info.chunks)
    assert lib.remove(solar) and not lib.remove(solar)
    assert solar not in lib
    with pytest.raises(KeyError):
        lib.search("solar", doc_ids=[solar])


def test_search_ranks_across_documents(tmp_path: Path, files: dict[str, Path]) -> None:
    lib = _library(tmp_path)
    solar = lib.add_file(files["solar"])
    wind = lib.add_file(files["wind"])
    hits = lib.search("gearbox rotor speed", k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(h.chunk.doc_id == wind for h in hits)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert lib.search("sunlight temperature", k=3)[0].chunk.doc_id == solar
    only_solar = lib.search("inverter", k=50, doc_ids=[solar])
    assert only_solar and {h.chunk.doc_id for h in only_solar} == {solar}
    assert lib.search("", k=5) == [] and lib.search("inverter", k=0) == []
    assert lib.search(["gearbox"], k=1)[0].chunk.doc_id == wind, "pre-tokenized queries work"


def test_shared_idf_matches_one_combined_index(tmp_path: Path, files: dict[str, Path]) -> None:
    """'inverter' is in every solar chunk but rare overall; scores must use the idf over both documents."""
    lib = _library(tmp_path)
    solar = lib.add_file(files["solar"])
    wind = lib.add_file(files["wind"])
    chunks = lib.chunks(solar) + lib.chunks(wind)
    combined = BM25Index().build([c.text for c in chunks])
    for query in ("inverter grid", "turbines inverter salt", "panel efficiency gearbox 7", "direct current"):
        hits = lib.search(query, k=1000)  # every chunk that matches: the repetitive text has many ties
        expected = combined.search(query, k=1000)
        got = {(h.chunk.doc_id, h.chunk.chunk_id): h.score for h in hits}
        want = {(chunks[i].doc_id, chunks[i].chunk_id): s for i, s in expected}
        assert set(got) == set(want), query
        for key, score in want.items():
            assert got[key] == pytest.approx(score, rel=0.05), (query, key)


def test_cache_hit_on_second_library_and_no_rewrite(tmp_path: Path, files: dict[str, Path]) -> None:
    first = _library(tmp_path)
    doc_id = first.add_file(files["solar"])
    assert first.stats == {"cache_hits": 0, "cache_misses": 1}
    entry = first.cache.path(next(iter(first._docs.values())).cached.key)
    mtimes = {p: p.stat().st_mtime_ns for p in entry.rglob("*") if p.is_file()}
    assert entry.joinpath("index", "data.csc.index.npy").exists()

    second = _library(tmp_path)
    assert second.add_file(files["solar"]) == doc_id
    assert second.stats == {"cache_hits": 1, "cache_misses": 0}
    assert second.document(doc_id).cached
    assert {p: p.stat().st_mtime_ns for p in entry.rglob("*") if p.is_file()} == mtimes
    assert [h.chunk for h in second.search("inverter 7", k=3)] == [h.chunk for h in first.search("inverter 7", k=3)]


def test_cache_is_keyed_by_content_not_path(tmp_path: Path, files: dict[str, Path]) -> None:
    _library(tmp_path).add_file(files["solar"])
    renamed = tmp_path / "elsewhere" / "copy.txt"
    renamed.parent.mkdir()
    shutil.copy(files["solar"], renamed)
    lib = _library(tmp_path)
    doc_id = lib.add_file(renamed)
    assert lib.stats["cache_hits"] == 1
    assert lib.document(doc_id).source == str(renamed)
    assert lib.search("inverter", k=1)[0].chunk.source == str(renamed)

    files["solar"].write_text(SOLAR + "\n\nOne more line.", encoding="utf-8")  # same path, new content
    changed = _library(tmp_path)
    assert changed.add_file(files["solar"]) != doc_id
    assert changed.stats["cache_misses"] == 1


def test_parameters_are_part_of_the_key(tmp_path: Path, files: dict[str, Path]) -> None:
    _library(tmp_path).add_file(files["solar"])
    other = Library(cache_dir=tmp_path / "cache", target_tokens=256)
    other.add_file(files["solar"])
    assert other.stats["cache_misses"] == 1
    bm25 = _library(tmp_path, k1=1.2)
    bm25.add_file(files["solar"])
    assert bm25.stats["cache_misses"] == 1


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path, files: dict[str, Path]) -> None:
    lib = _library(tmp_path)
    lib.add_file(files["solar"])
    entry = lib.cache.path(next(iter(lib._docs.values())).cached.key)
    os.remove(entry / "index" / "vocab.txt")
    again = _library(tmp_path)
    again.add_file(files["solar"])
    assert again.stats["cache_misses"] == 1
    assert (entry / "index" / "vocab.txt").exists()
    third = _library(tmp_path)
    third.add_file(files["solar"])
    assert third.stats == {"cache_hits": 1, "cache_misses": 0}  # the rebuilt entry is whole again


def test_no_cache_mode_writes_nothing(tmp_path: Path, files: dict[str, Path]) -> None:
    lib = _library(tmp_path, use_cache=False)
    lib.add_file(files["solar"])
    assert not (tmp_path / "cache").exists()
    assert lib.search("inverter", k=1)


def test_add_text_and_crlf_round_trip(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    html = "<html><body><h1>Recipes</h1><p>Boil the pasta for nine minutes.</p></body></html>"
    page = lib.add_text(html, "https://example.org/pasta", format="html")
    assert lib.search("pasta boil", k=1)[0].chunk.section == "Recipes"
    assert lib.document(page).source == "https://example.org/pasta"
    crlf = "First line.\r\nSecond line.\r\n\r\nThird paragraph.\r\n" * 40
    doc = lib.add_text(crlf, "notes.txt")
    reloaded = _library(tmp_path)
    assert reloaded.add_text(crlf, "notes.txt") == doc and reloaded.stats["cache_hits"] == 1
    assert reloaded.text(doc) == crlf
    for chunk in reloaded.chunks(doc):
        assert crlf[chunk.start : chunk.end] == chunk.text


def test_add_files_reports_errors_and_continues(tmp_path: Path, files: dict[str, Path]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a zip")
    lib = _library(tmp_path)
    result = lib.add_files([files["solar"], empty, tmp_path / "missing.txt", broken, files["wind"]], progress=False)
    assert len(result.doc_ids) == 2
    assert set(result.errors) == {str(empty), str(tmp_path / "missing.txt"), str(broken)}
    assert "empty" in result.errors[str(empty)] and "corrupt" in result.errors[str(broken)]
    with pytest.raises(DocumentError):
        lib.add_file(empty)


def test_parallel_searches_agree(tmp_path: Path, files: dict[str, Path]) -> None:
    lib = _library(tmp_path)
    lib.add_file(files["solar"])
    lib.add_file(files["wind"])
    queries = ["inverter", "gearbox 12", "salt corrosion", "sunlight 30", "blades rotor"] * 8
    serial = [[(h.chunk.doc_id, h.chunk.chunk_id) for h in lib.search(q, k=4)] for q in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda q: [(h.chunk.doc_id, h.chunk.chunk_id) for h in lib.search(q, k=4)], queries))
    assert parallel == serial


def test_environment_cache_dir(tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTOR_CACHE", str(tmp_path / "envcache"))
    Library().add_file(files["solar"])
    assert any((tmp_path / "envcache" / "docs").rglob("meta.json"))


def test_cached_chunks_decode_from_byte_ranges_of_non_ascii_text(tmp_path: Path) -> None:
    text = "\n\n".join(
        f"第{i}章：北京的天气很好。Café naïve — résumé {i} 🚀 emoji.\r\nZweite Zeile mit Umlauten: äöü ß."
        for i in range(120)
    )
    doc = _library(tmp_path).add_text(text, "multi.txt")
    reloaded = _library(tmp_path)
    assert reloaded.add_text(text, "multi.txt") == doc and reloaded.stats["cache_hits"] == 1
    chunks = reloaded.chunks(doc)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
    assert reloaded.text(doc) == text
    assert reloaded.document(doc).chars == len(text)
    hit = reloaded.search("第7章 umlauten", k=1)[0].chunk
    assert "第7章" in hit.text and hit.text == text[hit.start : hit.end]


def test_adding_a_file_says_how_far_it_has_got(tmp_path: Path) -> None:
    path = tmp_path / "harbour.txt"
    path.write_text("\n\n".join(f"Boat {i} carried nets and ropes to the quay at dawn." for i in range(3000)))
    steps: list[IngestStep] = []
    lib = _library(tmp_path)
    doc_id = lib.add_file(path, on_progress=steps.append)
    stages = list(dict.fromkeys(s.stage for s in steps))
    assert stages == ["parsing", "splitting into passages", "indexing", "saving"]
    percents = [s.percent for s in steps]
    assert percents == sorted(percents) and 0 <= percents[0] and percents[-1] < 100
    indexing = [s for s in steps if s.stage == "indexing"]
    chunks = next(d.chunks for d in lib.documents() if d.doc_id == doc_id)
    assert 10 <= len(indexing) <= 60 and indexing[-1].chunks_done == indexing[-1].chunks_total == chunks > 1
    steps.clear()
    _library(tmp_path).add_file(path, on_progress=steps.append)
    assert steps == []  # from the cache: nothing to wait for
