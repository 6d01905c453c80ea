"""`lector index` and `lector search`: output, the stable JSON shape, errors, and cache reuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lector.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
TEXT = "\n\n".join(
    f"Chapter {i}. The lighthouse keeper logged the storm on day {i}. Ships waited in the harbour "
    "until the fog lifted, and the keeper trimmed the lamp wick every evening."
    for i in range(80)
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(list(argv))
    code = int(args.func(args) or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_search_json_is_the_documented_shape(tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    code, out, _ = run(capsys, "search", str(doc), "-q", "storm on day 42", "-k", "3", "--json", "--cache-dir", cache)
    assert code == 0
    payload = json.loads(out)
    assert set(payload) == {"results", "elapsed_ms"}
    assert isinstance(payload["elapsed_ms"], float)
    assert len(payload["results"]) == 3
    for rank, result in enumerate(payload["results"], start=1):
        assert list(result) == ["rank", "score", "source", "chunk_id", "start", "end", "page", "text", "sentence"]
        assert result["rank"] == rank and result["source"] == str(doc) and result["page"] is None
        assert TEXT[result["start"] : result["end"]] == result["text"]
    assert "day 42." in payload["results"][0]["text"]
    assert payload["results"][0]["sentence"] == "The lighthouse keeper logged the storm on day 42."


def test_search_shows_the_matching_sentence_bold_on_a_terminal(
    tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "cache")
    code, out, _ = run(capsys, "search", str(doc), "-q", "lamp wick day 7", "-k", "1", "--cache-dir", cache)
    assert code == 0
    shown = out.splitlines()[1].strip()
    assert shown == (
        "Ships waited in the harbour until the fog lifted, and the keeper trimmed the lamp wick every evening. … "
        "The lighthouse keeper logged the storm on day 7."
    ), "the best sentence, then one that adds the query's other terms"
    assert "\x1b" not in out, "plain when not on a terminal"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, _ = run(capsys, "search", str(doc), "-q", "harbour fog", "-k", "1", "--cache-dir", cache)
    assert code == 0
    assert out.splitlines()[1] == (
        "    Ships waited in the \x1b[1mharbour\x1b[22m until the \x1b[1mfog\x1b[22m lifted, and the keeper trimmed "
        "the lamp wick every evening."
    )


def test_search_text_output_and_several_files(tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "garden.md"
    other.write_text("# Garden\n\nTomatoes need sun and regular watering.", encoding="utf-8")
    cache = str(tmp_path / "cache")
    code, out, err = run(capsys, "search", str(doc), str(other), "-q", "tomatoes watering", "--cache-dir", cache)
    assert code == 0
    assert out.startswith("#1") and "garden.md" in out.splitlines()[0] and "§ Garden" in out
    assert "ms search" in err
    code, out, _ = run(capsys, "search", str(tmp_path), "-q", "lamp wick", "-k", "1", "--json", "--cache-dir", cache)
    assert json.loads(out)["results"][0]["source"].endswith("keeper.txt"), "folders are walked"


def test_index_reports_counts_errors_and_cache(tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    cache = str(tmp_path / "cache")
    code, out, err = run(capsys, "index", str(doc), str(bad), "--cache-dir", cache)
    assert code == 1, "an input that failed makes the command fail, after the others were indexed"
    assert "indexed  " + str(doc) in out and "1 documents" in out and "(0 from cache)" in out
    assert str(bad) in err and "corrupt" in err
    code, out, _ = run(capsys, "index", str(doc), "--cache-dir", cache, "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["documents"] == 1 and summary["cached"] == 1 and summary["chunks"] > 1
    assert summary["tokens"] > 1000 and summary["errors"] == []


def test_nothing_readable_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "search", str(tmp_path / "nope.txt"), "-q", "x", "--cache-dir", str(tmp_path))
    assert code == 1 and "file not found" in err


def test_second_search_reuses_the_cached_index(tmp_path: Path, doc: Path) -> None:
    """Two `lector search` processes: the second loads the cache entry the first wrote, untouched."""
    env = {**os.environ, "LECTOR_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "lector", "search", str(doc), "-q", "fog harbour", "-k", "2", "--json"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    entries = list((tmp_path / "cache" / "docs").rglob("meta.json"))
    assert len(entries) == 1
    files = {p: p.stat().st_mtime_ns for p in entries[0].parent.rglob("*") if p.is_file()}
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["results"] == json.loads(first.stdout)["results"]
    assert {p: p.stat().st_mtime_ns for p in entries[0].parent.rglob("*") if p.is_file()} == files
    assert len(list((tmp_path / "cache" / "docs").rglob("meta.json"))) == 1
    index = subprocess.run(
        [sys.executable, "-m", "lector", "index", str(doc), "--json"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert json.loads(index.stdout)["cached"] == 1
