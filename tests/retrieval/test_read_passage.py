"""What Level 2 shows of a chunk: the sentences around its terms, within a token cap."""

from __future__ import annotations

from lector.retrieval.read_passage import GAP, focused_spans, passage_text
from lector.retrieval.token_estimate import approx_tokens
from lector.retrieval.types import Chunk


def chunk_of(sentences: list[str]) -> Chunk:
    text = " ".join(sentences)
    return Chunk(doc_id="d", source="s.txt", chunk_id=3, start=1000, end=1000 + len(text), text=text)


FILLER = [f"Sentence {i} tells of the fields and the weather of the hill farms." for i in range(30)]


def test_the_term_sentences_with_their_neighbours_and_a_gap_between() -> None:
    sentences = [*FILLER]
    sentences[5] = "The keeper Orvald Brenn painted the tower green."
    sentences[20] = "Nobody saw the keeper again."
    chunk = chunk_of(sentences)
    spans = focused_spans(chunk, ["keeper"], sentences=4, radius=1, max_tokens=400)
    shown = passage_text(chunk.text, spans)
    assert shown.split(GAP) == [" ".join(sentences[4:7]), " ".join(sentences[19:22])]
    assert all(chunk.text[s:e].strip() in chunk.text for s, e in spans)


def test_fewer_windows_while_they_exceed_the_cap() -> None:
    sentences = [*FILLER]
    for i in (3, 12, 24):
        sentences[i] = f"The keeper came back in year {i}."
    chunk = chunk_of(sentences)
    spans = focused_spans(chunk, ["keeper"], sentences=3, radius=1, max_tokens=45)
    shown = passage_text(chunk.text, spans)
    assert shown.count("keeper") < 3 and approx_tokens(shown) <= 45


def test_a_chunk_without_a_term_shows_its_ends() -> None:
    chunk = chunk_of(FILLER)
    shown = passage_text(chunk.text, focused_spans(chunk, ["lighthouse"], sentences=4, radius=1, max_tokens=400))
    head, tail = shown.split(GAP)
    assert head == " ".join(FILLER[:2]) and tail == " ".join(FILLER[-2:])


def test_one_long_sentence_is_cut_to_the_cap() -> None:
    chunk = chunk_of(["The keeper " + "walked and walked " * 200 + "home."])
    shown = passage_text(chunk.text, focused_spans(chunk, ["keeper"], sentences=2, radius=1, max_tokens=50))
    assert shown.startswith("The keeper") and 20 < approx_tokens(shown) <= 50
