"""Snippets: the sentence(s) of a chunk that match a query best, with the matching words marked."""

from __future__ import annotations

from lector.retrieval.snippets import SNIPPET_CHARS, snippet

CHUNK = (
    "Chapter 4. The lighthouse keeper logged the storm on day 4.\n"
    "Ships waited in the harbour until the fog lifted, and the keeper trimmed the lamp wick every evening."
)


def test_the_sentence_with_the_most_query_terms_is_shown_with_them_marked() -> None:
    found = snippet(CHUNK, "lamp wick")
    assert found.text == (
        "Ships waited in the harbour until the fog lifted, and the keeper trimmed the lamp wick every evening."
    )
    assert found.marked == ["lamp", "wick"]


def test_marks_match_by_bm25_terms_not_spelling() -> None:
    found = snippet("The keepers trimmed their lamps. Nothing else happened.", "keeper lamp")
    assert found.marked == ["keepers", "lamps"], "stemmed like the index: a query for a lamp finds lamps"
    assert "Nothing" not in found.text


def test_a_second_sentence_joins_when_it_adds_query_terms() -> None:
    found = snippet(CHUNK, "storm harbour")
    assert found.text.startswith("The lighthouse keeper logged the storm on day 4. Ships waited in the harbour")
    assert found.marked == ["storm", "harbour"]
    assert "Chapter 4." not in found.text
    apart = snippet("The storm came. " + "Filler sentence here. " * 5 + "The harbour froze.", "storm harbour")
    assert apart.text == "The storm came. … The harbour froze."


def test_sentences_that_add_nothing_new_are_left_out() -> None:
    found = snippet("The storm came at noon. The storm went at night. Tea was served.", "storm")
    assert found.text == "The storm came at noon."


def test_no_matching_sentence_gives_the_opening() -> None:
    found = snippet(CHUNK, "zebra")
    assert found.text == "Chapter 4." and found.marked == []


def test_a_long_sentence_is_cut_around_its_first_hit() -> None:
    text = "word " * 30 + "the keeper trimmed the lamp here, " + "and then more words " * 20 + "end."
    found = snippet(text, "lamp")
    assert found.text.startswith("…word word") and found.text.endswith("…")
    assert "lamp" in found.marked
    assert len(found.text) <= SNIPPET_CHARS + 2


def test_chinese_terms_are_marked_where_they_occur() -> None:
    found = snippet("灯塔看守人在风暴中点亮了灯。船只在港口等待。", "港口")
    assert found.text == "船只在港口等待。"
    assert found.marked == ["港口"]


def test_identifiers_are_marked_whole() -> None:
    found = snippet("Call os.path.join to build it. Other text.", "join")
    assert found.marked == ["os.path.join"]
    assert "".join(p for p, _ in found.parts) == found.text
