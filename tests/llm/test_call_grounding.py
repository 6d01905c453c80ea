"""Calls on required values the conversation never gave are held back in tool_choice 'auto' (llm.call_grounding)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lector.llm.call_grounding import Missing, missing_note, ungrounded
from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.prompt_calling import RawChunk, ReplyReader


def spec(name: str, props: dict[str, Any], required: list[str]) -> ToolSpec:
    return ToolSpec(name=name, description="", parameters={"type": "object", "properties": props, "required": required})


FIND_SALON = spec(
    "find_salon",
    {
        "city": {"type": "string", "description": "The city, as 'City, State'."},
        "unisex": {"type": "boolean"},
    },
    ["city"],
)
BOOK_TRAIN = spec(
    "book_train",
    {
        "from": {"type": "string"},
        "to": {"type": "string"},
        "date": {"type": "string"},
        "class": {"type": "string", "enum": ["Value", "Business", "Flexible"]},
        "seats": {"type": "integer"},
    },
    ["from", "to", "date", "class", "seats"],
)
WEATHER = spec("weather", {"city": {"type": "string"}, "country": {"type": "string"}}, ["city", "country"])
SEND = spec("send", {"to": {"type": "string"}, "message": {"type": "string"}}, ["to", "message"])
TOOLS = [FIND_SALON, BOOK_TRAIN, WEATHER, SEND]


def call(name: str, **args: Any) -> ToolCall:
    return ToolCall(name=name, arguments=json.dumps(args))


def asked(*texts: str) -> list[Message]:
    return [Message.user(t) for t in texts]


def test_a_city_the_user_never_named_is_missing() -> None:
    missing = ungrounded([call("find_salon", city="Los Angeles, CA")], TOOLS, asked("Find me a salon to go to."))
    assert missing == [Missing("find_salon", "city", "The city, as 'City, State'.")]


def test_words_every_sentence_has_do_not_count() -> None:
    movie = spec("buy_tickets", {"movie": {"type": "string"}, "city": {"type": "string"}}, ["movie", "city"])
    conversation = asked("I would like to buy a movie ticket in Concord on the Apr 9th for four people.")
    missing = ungrounded([call("buy_tickets", movie="The Matrix", city="Concord, CA")], [movie], conversation)
    assert [m.parameter for m in missing] == ["movie"]


def test_a_value_the_user_gave_in_another_form_is_not() -> None:
    conversation = asked("Would you help me to find a salon in Mill Valley?")
    assert ungrounded([call("find_salon", city="Mill Valley, CA")], TOOLS, conversation) == []


@pytest.mark.parametrize(
    ("said", "city"),
    [
        ("How's the weather in LA on March 9th?", "Los Angeles, CA"),
        ("get the weather of nyc", "New York, NY"),
        ("What is the weather going to be like in Philly?", "Philadelphia"),
        ("Order 5 fries from mc donalds", "McDonald's"),
    ],
)
def test_initials_short_forms_and_other_spacing_count_as_said(said: str, city: str) -> None:
    assert ungrounded([call("find_salon", city=city)], TOOLS, asked(said)) == []


def test_only_the_invented_arguments_are_reported() -> None:
    conversation = asked("Reserve a train ticket from Sacramento for next Friday, one seat, any class.")
    train = call("book_train", **{"from": "Sacramento, CA", "to": "Los Angeles, CA", "date": "2023-04-21"})
    train = ToolCall(name="book_train", arguments=json.dumps({**train.parsed_arguments(), "class": "Flexible"}))
    assert [m.parameter for m in ungrounded([train], TOOLS, conversation)] == ["to"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2023-04-21", "a date the model works out"),
        ("10:00 AM", "a time"),
        ("GB", "a code"),
        ("en-US", "a language tag"),
    ],
)
def test_dates_times_and_codes_are_not_judged(value: str, why: str) -> None:
    conversation = asked("What is the weather in London on Friday?")
    assert ungrounded([call("weather", city="London", country=value)], TOOLS, conversation) == [], why


def test_composed_text_optional_arguments_and_other_types_are_not_judged() -> None:
    conversation = asked("Tell Jhon that I need some money to buy a gift.")
    long_message = call("send", to="Jhon", message="Hi there, could you lend me a little cash for a present?")
    assert ungrounded([long_message], TOOLS, conversation) == []
    assert ungrounded([call("find_salon", city="Boston", unisex=True)], TOOLS, asked("A salon in Boston")) == []
    assert ungrounded([call("book_train", seats=3)], TOOLS, asked("Book a train")) == []


def test_lower_case_values_and_composed_arguments_are_not_judged() -> None:
    search = spec("search_documents", {"query": {"type": "string"}, "doc": {"type": "string"}}, ["query", "doc"])
    conversation = asked("Comment réinitialiser la balise ?")
    assert ungrounded([call("search_documents", query="Reset Beacon", doc="manual")], [search], conversation) == []


def test_values_from_tool_results_and_word_stems_count() -> None:
    conversation = [
        Message.user("Where is the nearest office? Then get me its weather."),
        Message.assistant(tool_calls=[call("find_office")]),
        Message.tool("c1", "find_office", '{"city": "Reykjavik", "country": "IS"}'),
    ]
    assert ungrounded([call("weather", city="Reykjavik", country="IS")], TOOLS, conversation) == []
    assert ungrounded([call("find_salon", city="Salons Row")], TOOLS, asked("Any salon near me?")) == []


def test_a_conversation_in_another_script_is_not_judged() -> None:
    assert ungrounded([call("weather", city="Beijing", country="CN")], TOOLS, asked("北京的天气怎么样？")) == []


def test_the_note_names_what_is_needed_and_for_what() -> None:
    note = missing_note([Missing("find_salon", "city", "The city, as 'City, State'.")])
    assert note == (
        "To use `find_salon` I need a value you have not given yet: `city` (The city, as 'City, State'). "
        "What should I use?"
    )


RAW = '<tool_call>\n{"name": "find_salon", "arguments": {"city": "Los Angeles, CA"}}\n</tool_call>'


def test_the_reply_asks_instead_of_calling_in_auto() -> None:
    reader = ReplyReader(TOOLS, "auto", asked("Find me a salon to go to."))
    reader.feed(RawChunk(text=RAW))
    delta = reader.finish()
    assert delta.tool_calls == []
    assert "`city`" in delta.text and delta.finish_reason == "stop"


@pytest.mark.parametrize("choice", ["required", "find_salon"])
def test_a_call_the_caller_demands_is_kept(choice: str) -> None:
    reader = ReplyReader(TOOLS, choice, asked("Find me a salon to go to."))
    reader.feed(RawChunk(text=RAW))
    assert [c.name for c in reader.finish().tool_calls] == ["find_salon"]


def test_native_calls_are_judged_too() -> None:
    reader = ReplyReader(TOOLS, "auto", asked("Find me a salon to go to."))
    reader.feed(RawChunk(tool_calls=[call("find_salon", city="Los Angeles, CA")]))
    assert reader.finish().tool_calls == []


def test_arguments_that_are_not_json_are_left_to_the_tool() -> None:
    broken = ToolCall(name="find_salon", arguments="not json")
    assert ungrounded([broken], TOOLS, asked("Find me a salon.")) == []


@pytest.mark.parametrize("value", ["your_username", "<username>", "null", "None", "unknown"])
def test_a_placeholder_for_a_required_value_is_missing(value: str) -> None:
    login = spec("login", {"username": {"type": "string"}}, ["username"])
    assert [m.parameter for m in ungrounded([call("login", username=value)], [login], asked("Log me in"))] == [
        "username"
    ]
    assert ungrounded([call("login", username=value)], [login], asked(f"Log me in as {value}")) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://api.ip2company.com/v2/<ip_address>",
        "https://api.example.com/nodes",
        "http://h.io/{user_id}/x",
        "/path/to/questions.txt",
    ],
)
def test_an_address_with_a_placeholder_in_it_is_missing(url: str) -> None:
    fetch = spec("fetch", {"url": {"type": "string"}}, ["url"])
    assert [m.parameter for m in ungrounded([call("fetch", url=url)], [fetch], asked("Get me the data"))] == ["url"]
    assert ungrounded([call("fetch", url=url)], [fetch], asked(f"Fetch {url} for me")) == []
    real = "https://192.168.11.33/sedgeapi/v1/nodes?fabricName=PEK-ACI"
    assert ungrounded([call("fetch", url=real)], [fetch], asked("List the nodes of PEK-ACI on 192.168.11.33")) == []


def test_an_email_address_nobody_gave_is_missing() -> None:
    send = spec("send", {"to": {"type": "string"}, "text": {"type": "string"}}, ["to", "text"])
    made_up = call("send", to="jhon@gmail.com", text="Hi")
    assert [m.parameter for m in ungrounded([made_up], [send], asked("Tell Jhon hi"))] == ["to"]
    assert ungrounded([made_up], [send], asked("Mail Jhon@Gmail.com: hi")) == []
