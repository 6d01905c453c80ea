"""A quote the model rewrote on the way stands for the sentence it nearly copies, never for its own words."""

from __future__ import annotations

from lector.retrieval.near_copy import fragment_sentence_span, near_copy_span

TEXT = (
    "The fog lifted at noon. Osric Marrowby hid the tide charts inside a pewter chest under the chapel floor. "
    "Nobody found them for a century."
)


def span_text(quote: str) -> str | None:
    span = near_copy_span(quote, TEXT)
    return None if span is None else TEXT[span[0] : span[1]]


def test_the_questions_words_put_in_still_find_the_sentence() -> None:
    copied = "Osric Marrowby hid the tide charts inside a pewter chest under the chapel floor."
    assert span_text("Osric Marrowby hid the ocean maps inside a pewter chest under the chapel floor") == copied
    assert span_text("Osric Marrowby hid the charts inside a pewter chest") == copied


def test_a_quote_that_shares_little_with_every_sentence_is_none() -> None:
    assert span_text("The mayor painted the chapel floor bright purple in spring") is None
    assert span_text("the fog lifted") is None  # too few words to say which sentence
    assert near_copy_span("灯塔被漆成了绿色", "灯塔被漆成了绿色。") is None  # CJK quotes are checked exactly


def test_the_answers_words_alone_stand_for_their_sentence_where_they_occur_once() -> None:
    span = fragment_sentence_span("Pewter chest", TEXT)
    assert span is not None and TEXT[span[0] : span[1]].startswith("Osric Marrowby hid the tide charts")
    assert fragment_sentence_span("the chapel", TEXT + " The chapel burned.") is None  # twice: which one?
    assert fragment_sentence_span("at noon", TEXT) is None  # too short to say anything
