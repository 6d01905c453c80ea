"""The README's Python example, as written, on the sample document it names (with the real 0.5B model)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import lector

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "beacon-manual.md"


def test_the_readme_names_the_shipped_sample() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'ask(["examples/beacon-manual.md"], "How do I reset the beacon?"' in readme
    assert SAMPLE.is_file()


def test_the_readme_question_is_answered_from_the_reset_section(
    small_model: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LECTOR_CACHE", str(tmp_path))
    answer = lector.ask(["examples/beacon-manual.md"], "How do I reset the beacon?", level="auto", backend=small_model)
    text = SAMPLE.read_text(encoding="utf-8")
    assert answer.answer.strip()
    assert answer.citations, answer
    for citation in answer.citations:
        assert citation.source == os.path.join("examples", "beacon-manual.md")
    assert any("reset button" in c.text for c in answer.citations), answer.citations
    assert "10 seconds" in answer.answer or "OFF" in answer.answer, answer.answer
    assert all(text[c.start : c.end] == c.text for c in answer.citations)
