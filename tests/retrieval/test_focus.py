"""Sentence windows: the best-matching sentences of the evidence, with their neighbours, at exact offsets."""

from __future__ import annotations

from lector.retrieval.focus import quoting, sentence_windows
from lector.retrieval.reading_types import Evidence
from lector.retrieval.types import Chunk

FILLER = " ".join(f"Sentence {i} talks about the weather and the harvest." for i in range(30))
NEEDLE = "The keeper Orvald Brenn painted the tower green."


def item(text: str, chunk_id: int, start: int) -> Evidence:
    return Evidence.of_chunk(
        Chunk(doc_id="d", source="d.txt", chunk_id=chunk_id, start=start, end=start + len(text), text=text)
    )


def test_windows_keep_the_matching_sentence_and_its_neighbours_at_exact_offsets() -> None:
    head, tail = FILLER[: len(FILLER) // 2], FILLER[len(FILLER) // 2 :]
    text = f"{head} {NEEDLE} {tail}"
    document = "x" * 1000 + text
    items = [item(FILLER, 1, 0), item(text, 2, 1000)]
    windows = sentence_windows(items, ["Orvald", "Brenn", "tower"], sentences=1)
    assert len(windows) == 1
    w = windows[0]
    assert NEEDLE in w.text and len(w.text) < 200 and w.text.count(".") == 3  # one neighbour either side
    assert document[w.start : w.end] == w.text and w.chunk.chunk_id == 2


def test_windows_merge_adjacent_matches_and_fall_back_to_whole_items() -> None:
    items = [item(FILLER, 1, 0)]
    merged = sentence_windows(items, ["Sentence 3 ", "Sentence 4 "], sentences=2)
    assert len(merged) == 1 and "Sentence 2 " in merged[0].text and "Sentence 5 " in merged[0].text
    assert sentence_windows(items, ["zzyzx"]) == items


def test_a_quoted_line_found_in_the_evidence_is_the_evidence() -> None:
    items = [item(FILLER, 1, 0), item("Then LET it be, my lord.", 2, 1000), item("Let us see it be done.", 3, 2000)]
    assert [e.chunk.chunk_id for e in quoting(items, ["let it be"])] == [2]
    assert quoting(items, ["not in there"]) == items
    assert quoting(items, ["weather"]) == items, "a single word is no quoted line"
