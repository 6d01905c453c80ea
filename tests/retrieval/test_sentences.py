"""The one sentence splitter and the one CJK helper."""

from __future__ import annotations

import pytest

from lector.retrieval.cjk import CJK_RUN, cjk_count, has_cjk
from lector.retrieval.sentences import MAX_SENTENCE_CHARS, sentence_spans


def test_sentence_spans_split_sentences_paragraphs_and_long_runs() -> None:
    text = "One two. Three four!\n\nA paragraph\n- item one\n- item two\n\n" + "word " * 300 + "。中文。"
    pieces = [text[s:t] for s, t in sentence_spans(text)]
    assert pieces[:5] == ["One two.", "Three four!", "A paragraph", "- item one", "- item two"]
    assert all(len(p) <= MAX_SENTENCE_CHARS for p in pieces)
    assert pieces[-1] == "中文。"


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("灯塔是绿色的。看守人住在那里！他姓布伦", ["灯塔是绿色的。", "看守人住在那里！", "他姓布伦"]),
        ("Wait… 然后呢？好。", ["Wait…", "然后呢？", "好。"]),
        ("First; second? Third.", ["First;", "second?", "Third."]),
        ("v2.3 is out. 3.14 is pi.", ["v2.3 is out.", "3.14 is pi."]),  # no end mark without a space after
        ("   \n\n  ", []),
    ],
)
def test_sentence_ends_in_english_and_chinese(text: str, pieces: list[str]) -> None:
    assert [text[s:t] for s, t in sentence_spans(text)] == pieces


def test_cjk_helper() -> None:
    assert has_cjk("The tower 塔 is green") and not has_cjk("The tower is green, café")
    assert has_cjk("㐀") and has_cjk("豈")  # extension A and a compatibility ideograph count too
    assert cjk_count("灯塔 is 绿色") == 4
    assert CJK_RUN.findall("灯塔 is 绿色。") == ["灯塔", "绿色"]
