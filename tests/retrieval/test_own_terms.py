"""When the question's own words find a chunk that holds them all, Level 1 skips the model's keyword call."""

from __future__ import annotations

from pathlib import Path

from lector.retrieval.keywords import question_keywords
from lector.retrieval.library import Library
from lector.retrieval.own_terms import found_together, same_language

FILLER = "The harbour was quiet that spring, and the boats stayed in.\n\n"
TEXT = (
    FILLER * 40
    + "Old Tobias kept the lighthouse key in a pewter chest under the stairs.\n\n"
    + FILLER * 40
    + 'When the storm came, Mara said "let it be" and closed the shutters.\n\n'
    + FILLER * 40
    + ".. function:: open_harbour(tide, boats=3)\n\n   Open the harbour gates for the given tide.\n\n"
    + FILLER * 40
)


def library(tmp_path: Path) -> tuple[Library, str]:
    lib = Library(cache_dir=tmp_path)
    return lib, lib.add_text(TEXT, "harbour.txt")


def test_terms_found_together_in_one_chunk(tmp_path: Path) -> None:
    lib, doc = library(tmp_path)
    assert found_together(lib, question_keywords("Where was the lighthouse key Tobias kept?"), [doc])


def test_a_term_the_passage_writes_differently_needs_the_model(tmp_path: Path) -> None:
    lib, doc = library(tmp_path)
    assert not found_together(lib, question_keywords("Where did Tobias hide the beacon's key?"), [doc])


def test_a_quoted_span_of_stop_words_counts_when_the_chunk_holds_it(tmp_path: Path) -> None:
    lib, doc = library(tmp_path)
    assert found_together(lib, question_keywords('Who said "let it be"?'), [doc])
    assert not found_together(lib, question_keywords('Who said "so be it"?'), [doc])


def test_a_named_identifier_found_is_enough_whatever_the_question_calls_it(tmp_path: Path) -> None:
    lib, doc = library(tmp_path)
    assert found_together(
        lib, question_keywords("What type is `boats` of `harbourlib.open_harbour()` in the docs?"), [doc]
    )
    assert not found_together(lib, question_keywords("What does `close_harbour()` return in the docs?"), [doc])


def test_one_term_alone_says_nothing(tmp_path: Path) -> None:
    lib, doc = library(tmp_path)
    assert not found_together(lib, question_keywords("What about the harbour?"), [doc])


def test_the_documents_must_be_in_the_questions_language() -> None:
    assert same_language("Where is the key?", ["en"])
    assert not same_language("钥匙在哪里?", ["en"])
    assert not same_language("Where is the key?", ["en", "zh"])
    assert same_language("钥匙在哪里?", ["zh"])
