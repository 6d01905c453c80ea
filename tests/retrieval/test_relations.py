"""Following relations (retrieval/follow_relations.py): the chain a question names, the sentences that state each
link however the text words it, when each name recurs in many other sentences. SCRIPTED model only."""

from __future__ import annotations

import json

import pytest

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SCHEMA
from lector.retrieval.context import ReadingContext
from lector.retrieval.follow_relations import NAME_SCHEMA, code_entity, final_name, follow_relations, hop_query
from lector.retrieval.keywords import KeywordCache, question_keywords
from lector.retrieval.library import Library
from lector.retrieval.relation_chain import hops_needed, relation_chain
from lector.retrieval.relation_lists import listed_item
from lector.retrieval.relation_rules import related_by_rule


@pytest.mark.parametrize(
    "question, entity, relations, outer",
    [
        ("Who was the father of Enoch's father?", "Enoch", ["father", "father"], ""),
        ("Who was the father of the father of Enoch?", "Enoch", ["father", "father"], ""),
        ("Who is the mother of the wife of King Lear?", "King Lear", ["wife", "mother"], ""),
        (
            "What is the default value of `p` in the first See Also entry of `pkg.f`?",
            "pkg.f",
            ["first See Also entry"],
            "What is the default value of `p` in",
        ),
    ],
)
def test_relation_chain(question: str, entity: str, relations: list[str], outer: str) -> None:
    chain = relation_chain(question)
    assert chain is not None and (chain.entity, chain.relations, chain.outer) == (entity, relations, outer)
    assert hops_needed(question) == len(relations) + bool(outer)


def test_questions_without_a_chain() -> None:
    assert relation_chain("What colour was the lighthouse painted?") is None
    assert hops_needed("Who was the father of Enoch?") == 1


@pytest.mark.parametrize(
    "relation, entity, text, name",
    [
        ("father", "Enos", "And Seth lived an hundred and five years, and begat Enos.", "Seth"),
        ("father", "Jared", "Mahalaleel became the father of Jared.", "Mahalaleel"),
        ("father", "Jared", "Jared, son of Mahalaleel, dwelt there.", "Mahalaleel"),
        ("father", "Japheth", "And Noah begat Shem, Ham, and Japheth.", "Noah"),
        ("son", "Seth", "And Seth lived an hundred and five years, and begat Enos.", "Enos"),
        ("father", "Jared", "Jared went to the market with Mahalaleel.", None),
    ],
)
def test_related_by_rule(relation: str, entity: str, text: str, name: str | None) -> None:
    assert related_by_rule(relation, entity, text) == name


def chronicle(tmp_path) -> Library:
    """Each name recurs in dozens of sentences; each father is stated once, in a different wording."""
    names = ["Orvald", "Brenna", "Tamsin", "Corwin"]
    paras = [
        f"In year {i} {names[i % 4]} and {names[(i + 1) % 4]} went to the market of the valley." for i in range(2000)
    ]
    paras.insert(300, "And Corwin lived many years, and begat Tamsin.")
    paras.insert(1500, "Orvald, son of Tamsin, kept the mill.")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "chronicle.txt")
    return lib


async def test_a_two_hop_family_chain_needs_no_model_call(tmp_path) -> None:
    backend = ScriptedBackend()  # no reply scripted: any call fails the test
    ctx = ReadingContext(chronicle(tmp_path), backend, keyword_cache=KeywordCache())
    answer = await follow_relations(ctx, "Who was the father of Orvald's father?")
    assert answer is not None and answer.grounded and answer.answer.startswith("Corwin")
    assert answer.details["facts"] == ["the father of Orvald is Tamsin", "the father of Tamsin is Corwin"]
    assert "begat Tamsin" in answer.citations[0].text and answer.usage.llm_calls == 0


async def test_an_unstated_link_is_reported_not_guessed(tmp_path) -> None:
    backend = ScriptedBackend(default=json.dumps({"name": ""}))
    ctx = ReadingContext(chronicle(tmp_path), backend, keyword_cache=KeywordCache())
    answer = await follow_relations(ctx, "Who was the father of Corwin's father?")
    assert answer is not None and not answer.found
    assert answer.details["not_established"] == ["the father of Corwin"]


async def test_other_relations_are_read_by_the_model_then_the_outer_question(tmp_path) -> None:
    sections = [
        f".. function:: tool{i}(x, mode='m{i}')\n\n   Does step {i}.\n\n   See Also: the next step is tool{i + 1}."
        for i in range(400)
    ]  # no list under the heading: the model reads the name
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(sections), "manual.rst")

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        if options.json_schema == NAME_SCHEMA:
            return json.dumps({"name": "tool218"})
        assert options.json_schema == ANSWER_SCHEMA
        assert "What is the default value of `mode` in `tool218()`?" in messages[-1].content
        return json.dumps({"answer": "'m218'", "evidence": [2]})

    ctx = ReadingContext(lib, ScriptedBackend(default=reply), keyword_cache=KeywordCache())
    question = "What is the default value of `mode` in the first See Also entry of `pkg.tool217`?"
    answer = await follow_relations(ctx, question)
    assert answer is not None and "'m218'" in answer.answer and answer.usage.llm_calls == 2
    assert answer.details["facts"] == ["the first See Also entry of pkg.tool217 is tool218"]


@pytest.mark.parametrize(
    "relation, passage, item",
    [
        ("first See Also entry", "See Also\n--------\nmean, median, percentile\n\nNotes", "mean"),
        ("second See Also entry", "   See Also\n   --------\n   average : Weighted.\n   std, var\n", "std"),
        ("first See Also entry", "See Also\n--------\nnumpy.cumsum : Cumulative sum.\n", "numpy.cumsum"),
        ("first item under Related", "Related:\n\n- take()\n- put()\n\nMore", "take"),
        ("last See Also entry", "See Also\n--------\nsin, cos\n\n", "cos"),
        ("last See Also entry", "See Also\n--------\nsin, cos\ntan, arct", None),  # cut short: no last
        ("See Also entry", "See Also\n--------\nsin, cos\n\n", None),  # no position named
        ("first See Also entry", "See Also: the next step is tool9.", None),  # prose, not a list
    ],
)
def test_a_positional_relation_reads_the_list_under_its_heading(relation: str, passage: str, item: str | None) -> None:
    assert listed_item(relation, "See Also" if "See" in relation else "Related", passage) == item


def test_composed_relations_and_relative_clauses() -> None:
    chain = relation_chain("Who was the grandfather of Enoch?")
    assert chain is not None and chain.relations == ["father", "father"]
    luke = "Heli, which was the son of Matthat, which was the son of Levi"
    assert related_by_rule("father", "Matthat", luke) == "Levi"


def test_framing_before_the_question_word_is_no_outer_question() -> None:
    chain = relation_chain("In the Linux kernel documentation, what is the return type of `ktime_get()`?")
    assert chain is not None and chain.outer == "" and hops_needed(chain.entity) == 1


def test_names_a_code_chain_finds_are_looked_up_as_code() -> None:
    chain = relation_chain("What is the default of `k` in the first See Also entry of `numpy.trace`?")
    assert chain is not None
    assert code_entity(chain, "diag") == "diag()" and code_entity(chain, "np.diag") == "np.diag"
    assert final_name(chain, "diag") == "`diag()`"
    assert "::diag(" in question_keywords(chain.final_question(final_name(chain, "diag"))).query
    assert "::diag(" in hop_query(code_entity(chain, "diag"), "first See Also entry")
    family = relation_chain("Who was the father of Enoch's father?")
    assert family is not None and code_entity(family, "Jared") == "Jared" and final_name(family, "Jared") == "Jared"
