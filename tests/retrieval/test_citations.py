"""Citations and grounding: the model's [n] mapped to evidence, and the heuristics Auto escalates on."""

from __future__ import annotations

import pytest

from lector.retrieval.citations import cited_numbers, compose, content_terms, grounded, recited, says_not_found
from lector.retrieval.reading_types import Evidence
from lector.retrieval.types import Chunk

FACT = "The lighthouse keeper Orvald Brenn painted the tower green in 1887."
OTHER = "Paragraph 12 is about the barley and the mill of the valley."
ZH_FACT = "灯塔看守人把塔漆成了绿色。"
ZH_TOWER = "这座塔由工程师古斯塔夫·埃菲尔设计，于1889年建成，位于法国巴黎的战神广场。"


def evidence(text: str, chunk_id: int = 0, start: int = 0) -> Evidence:
    return Evidence.of_chunk(
        Chunk(doc_id="d", source="d.txt", chunk_id=chunk_id, start=start, end=start + len(text), text=text)
    )


@pytest.mark.parametrize(
    "answer, question, cited, expected",
    [
        ("Green [1].", "What colour was the tower painted?", [FACT], True),
        ("Orvald Brenn painted it green.", "Who painted the tower?", [FACT], True),
        ("Purple [1].", "What colour was the tower painted?", [FACT], False),  # not in what it cites
        ("Green [1].", "What colour was the tower painted?", [OTHER], False),  # cites the wrong evidence
        ("Green [1].", "What colour was the tower painted?", [OTHER, FACT], True),
        ("Green.", "What colour was the tower painted?", [], False),  # cites nothing
        ("The tower [1].", "What colour was the tower?", [OTHER], True),  # only the question's words, but cited
        ("The tower.", "What colour was the tower?", [], False),
        ("the GREEN one [1]", "What colour was the tower painted?", [FACT], True),  # case does not matter
        ("In 1887 [1].", "When was the tower painted green?", [FACT], True),
        ("In 1901 [1].", "When was the tower painted green?", [FACT], False),
        ("灯塔看守人把塔漆成了绿色。 [1]", "塔是什么颜色？", [ZH_FACT], True),
        ("蓝色 [1]", "塔是什么颜色？", [ZH_FACT], False),
        ("塔被漆成了绿色 [1]", "塔是什么颜色？", [ZH_FACT], True),  # part of a run of ideographs
        ("是工程师古斯塔夫·埃菲尔 [1]。", "这座塔是谁设计的？", [ZH_TOWER], True),
        ("它建在巴黎的战神广场 [1]", "这座塔在哪里？", [ZH_TOWER], True),
        ("它是一座红色的木制桥梁 [1]。", "这座塔是谁设计的？", [ZH_TOWER], False),  # unrelated
        ("设计者是一位不知名的意大利建筑师 [1]", "这座塔是谁设计的？", [ZH_TOWER], False),
        ("東京は日本の首都です [1]", "日本の首都は？", ["日本の首都は東京である。"], True),
    ],
)
def test_grounded(answer: str, question: str, cited: list[str], expected: bool) -> None:
    assert grounded(answer, question, [evidence(t) for t in cited]) is expected


@pytest.mark.parametrize(
    "reply, not_found",
    [
        ("NOT FOUND", True),
        ("The evidence does not mention the colour.", True),
        ("I cannot determine that from the evidence.", True),
        ("", True),
        ("   ", True),
        ("未找到", True),
        ("无法确定", True),
        ("Green [1].", False),
        ("It was found in the cellar [2].", False),
    ],
)
def test_says_not_found(reply: str, not_found: bool) -> None:
    assert says_not_found(reply) is not_found


def test_cited_numbers_in_first_cited_order_within_range() -> None:
    assert cited_numbers("Green [2], as [1] and [2, 3] say; not [9].", 3) == [2, 1, 3]
    assert cited_numbers("绿色 [1，2]", 2) == [1, 2]
    assert cited_numbers("No citation here.", 3) == []


def test_content_terms_drop_citations_small_words_and_single_letters() -> None:
    assert content_terms("The tower [1] is a green one, x") == {"tower", "green", "one"}
    assert content_terms("convolve(a, v, mode='full'), don't") == {"convolve", "mode", "full", "don't"}


def test_content_terms_cut_chinese_into_bigrams_without_stop_words() -> None:
    assert content_terms("绿色的塔 [1]，1889年") == {"绿色", "色的", "的塔", "1889", "年"}
    assert content_terms("我们的") == set()


def test_compose_grounds_a_chinese_answer_copying_part_of_its_evidence() -> None:
    items = [evidence(OTHER, 1), evidence(ZH_TOWER, 2)]
    composed = compose("设计者是工程师古斯塔夫·埃菲尔。", items, question="这座塔是谁设计的？")
    assert composed.grounded and [c.chunk_id for c in composed.citations] == [2]


def test_compose_renumbers_the_citations_and_judges_grounding() -> None:
    items = [evidence(OTHER, 1), evidence(FACT, 2, 100)]
    composed = compose("Green [2].", items, question="What colour was the tower painted?")
    assert composed.text == "Green [1]." and composed.found and composed.grounded
    assert [c.chunk_id for c in composed.citations] == [2] and composed.citations[0].start == 100
    uncited = compose("Orvald Brenn painted it green.", items)
    assert [c.chunk_id for c in uncited.citations] == [2]  # the evidence sharing the most words
    nothing = compose("NOT FOUND", items)
    assert not nothing.found and not nothing.grounded and nothing.citations == []
    wrong = compose("Green [1].", items, question="What colour was the tower painted?")
    assert wrong.found and not wrong.grounded


def test_a_long_evidence_item_is_cited_at_its_best_sentence() -> None:
    filler = " ".join(f"Sentence {i} is about the weather in the valley." for i in range(40))
    text = f"{filler} {FACT} {filler}"
    composed = compose("Green [1].", [evidence(text, 3, 1000)], question="What colour was the tower painted?")
    [cite] = composed.citations
    assert FACT in cite.text and len(cite.text) < 200
    assert text[cite.start - 1000 : cite.end - 1000] == cite.text


def test_recited_moves_the_citation_to_the_evidence_holding_the_answer() -> None:
    chain = [
        evidence("The Quillon Medal of 1952 went to Tamsin Vonnegrau.", 1),
        evidence("Tamsin Vonnegrau grew up in Orrin Ford.", 2, 500),
    ]
    question = "Where did the recipient of the 1952 Quillon Medal grow up?"
    miscited = compose("Orrin Ford [1]", chain, question=question)
    assert not miscited.grounded
    fixed = recited(miscited, chain, question)
    assert fixed.grounded and [c.chunk_id for c in fixed.citations] == [2] and fixed.text == "Orrin Ford [1]"
    invented = compose("Harwell College [1]", chain, question=question)
    assert recited(invented, chain, question) is invented  # no evidence holds its words
