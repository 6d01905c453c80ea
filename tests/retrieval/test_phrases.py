"""Quoted phrases and identifiers in search: a quoted line ranks first even when it is all stop words, whatever
the question's framing; code names match as a whole and by their parts."""

from __future__ import annotations

import pytest

from lector.retrieval.bm25_terms import tokenize
from lector.retrieval.keywords import question_keywords
from lector.retrieval.library import MAX_PHRASE_CHUNKS, Library
from lector.retrieval.phrases import find_phrase, phrase_pattern, quoted_spans

WORDS = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]


def filler(i: int) -> str:
    return f"In Hamlet's works the character {i} speaks a line of the {WORDS[i % 10]}; let me see it, be it so."


@pytest.mark.parametrize(
    "question, spans",
    [
        ('Which character speaks the line "let it be"?', ["let it be"]),
        ("Who says “So be it” and ‘not I’?", ["So be it", "not I"]),
        ("What does `os.path.join` return?", ["os.path.join"]),
        ("Don't quote anything here, it's plain.", []),
    ],
)
def test_quoted_spans(question: str, spans: list[str]) -> None:
    assert quoted_spans(question) == spans


@pytest.mark.parametrize(
    "phrase, text, found",
    [
        ("let it be", b"and so, let it be. then", True),
        ("Let it be", b"and so, LET IT\n  BE! then", True),
        ("I strain'd it", b"i strained it", True),
        ("I strained it", b"i strain\xe2\x80\x99d it", True),
        ("let it be", b"outlet it bee", False),  # whole words only
        ("let it be", b"\xe2\x80\x9clet it be\xe2\x80\x9d", True),  # curly quotes around it
    ],
)
def test_phrase_matching_is_lightly_normalised(phrase: str, text: bytes, found: bool) -> None:
    pattern = phrase_pattern(phrase)
    assert pattern is not None
    assert bool(list(find_phrase(text.lower(), pattern))) is found


def test_a_stop_word_quote_ranks_first_despite_the_framing(tmp_path) -> None:
    paras = [filler(i) for i in range(600)]
    paras.insert(417, "OPHELIA. Then let it be, my lord, the mill is quiet.")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "plays.txt")
    question = 'In Hamlet\'s works, which character speaks the line "let it be"?'
    query = question_keywords(question).query
    assert "OPHELIA" in lib.search(query, k=1)[0].chunk.text
    unquoted = " ".join(question_keywords(question).terms)
    assert all("OPHELIA" not in h.chunk.text for h in lib.search(unquoted, k=3)), "BM25 alone cannot find it"


def test_a_phrase_found_everywhere_is_not_lifted(tmp_path) -> None:
    paras = [filler(i) + (" The mill wheel turns." if (i // 40) % 2 else "") for i in range(3200)]
    paras.insert(20, "The sorghum crop was tardy; the wheel broke at the mill.")  # no paragraph near holds the phrase
    lib = Library(cache_dir=tmp_path)
    doc = lib.add_text("\n\n".join(paras), "farm.txt")
    assert sum("mill wheel" in c.text for c in lib.chunks(doc)) > MAX_PHRASE_CHUNKS
    top = lib.search('"the mill wheel" sorghum tardy', k=1)[0]
    assert "sorghum crop was tardy" in top.chunk.text


def test_identifiers_are_terms_whole_and_in_parts() -> None:
    terms = tokenize("Call numpy.linalg.norm(x, ord=None) or getElementById; HTTPServer and pages_to_scan.")
    for expected in (
        "numpy.linalg.norm",
        "linalg",
        "norm",
        "norm(",
        "getelementbyid",
        "element",
        "id",
        "httpserver",
        "http",
        "server",
        "pages_to_scan",
        "scan",
    ):
        assert expected in terms
    assert tokenize("pi is 3.14 in v2.3") == ["pi", "3.14", "v2.3"], "numbers and versions stay whole"


def test_a_dotted_name_finds_its_signature_under_a_module_heading(tmp_path) -> None:
    sections = [
        f"pkg.util{i}\n=========\n\n.. function:: helper{i}(value, method=None)\n\n   Uses the method "
        f"of the {WORDS[i % 10]}; see pkg.mod.function_name for the default method."
        for i in range(300)
    ]
    sections.insert(
        120,
        "pkg.mod\n=======\n\n.. function:: function_name(arg, method='strongest')\n\n"
        "   Picks the strongest method available.",
    )
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(sections), "manual.rst")
    query = question_keywords("What is the default value of `method` in `pkg.mod.function_name`?").query
    assert "function_name(arg, method='strongest')" in lib.search(query, k=1)[0].chunk.text
