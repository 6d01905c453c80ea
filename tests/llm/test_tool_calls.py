"""Prompt-based function calling: the parser table, streaming, prompt injection, tool_choice."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import jsonschema
import pytest

from lector.llm.call_parser import ParseResult, StreamingToolCallParser, parse_tool_calls
from lector.llm.forced_calls import apply_tool_choice, auto_call_grammar, forced_call_schema, parse_forced_calls
from lector.llm.json_repair import load_prefix, loads_lenient
from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.tool_prompt import inject_tools, render_tools_prompt
from tests.llm.call_cases import CALC, CASES, FETCH, TC, TOOLS


def _names_args(calls: list[ToolCall]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, json.loads(c.arguments)) for c in calls]


@pytest.mark.parametrize(("output", "calls", "text", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(output: str, calls: list[Any], text: str, error: str | None, request: Any) -> None:
    tools = None if request.node.callspec.id.endswith("-notools") else TOOLS
    result = parse_tool_calls(output, tools)
    assert _names_args(result.calls) == calls
    assert result.text == text
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None and error in result.error
    assert all(c.id.startswith("call_") for c in result.calls)
    assert len({c.id for c in result.calls}) == len(result.calls)


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize(("output", "calls", "text", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_streaming_char_by_char_matches_whole(output: str, calls: Any, text: str, error: Any, request: Any) -> None:
    if request.node.callspec.id == "close-think-only":
        pytest.skip("a stream cannot unshow text before a stray </think>; see test_stray_close_think_stream")
    tools = None if request.node.callspec.id.endswith("-notools") else TOOLS
    whole = parse_tool_calls(output, tools)
    parser = StreamingToolCallParser(tools)
    shown = "".join(parser.feed(ch) for ch in output)
    rest = parser.finish()
    assert shown + rest.text == whole.text
    assert _names_args(rest.calls) == _names_args(whole.calls)
    assert rest.error == whole.error
    for marker in ("<tool_call", "</tool_call", "✿FUNCTION", "✿ARGS", "<think", '"arguments"'):
        if marker not in whole.text:
            assert marker not in shown


@pytest.mark.parametrize("size", [1, 3, 7, 64])
def test_streaming_any_chunking(size: int) -> None:
    output = "Let me check.\n" + TC + '\nand\n```json\n{"name": "web_fetch", "arguments": {"url": "u"}}\n```'
    parser = StreamingToolCallParser(TOOLS)
    shown = "".join(parser.feed(output[i : i + size]) for i in range(0, len(output), size))
    rest = parser.finish()
    assert shown + rest.text == "Let me check.\nand"
    assert [c.name for c in rest.calls] == ["calculator", "web_fetch"]


FUZZ_PARTS = [
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
    "```",
    "```json\n",
    "```python\n",
    "✿FUNCTION✿: calculator\n",
    "✿ARGS✿: ",
    "✿RESULT✿",
    "✿",
    '{"name": "calculator", "arguments": {"expression": "1"}}',
    '{"name": "x"}',
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "\n",
    " ",
    "  \n\n ",
    "hello",
    "<",
    "<tool",
    "`",
    "\\",
    ",",
    ":",
    '"name"',
    "<tool_response>",
    "<function=calculator><parameter=expression>2</parameter></function>",
]


@pytest.mark.parametrize("seed", range(4))
def test_streaming_matches_whole_on_random_mixtures(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        text = "".join(rng.choice(FUZZ_PARTS) for _ in range(rng.randint(1, 20)))
        if "</think>" in text and not 0 <= text.find("<think>") < text.find("</think>"):
            continue  # the documented exception
        for tools in (TOOLS, None):
            whole = parse_tool_calls(text, tools)
            parser = StreamingToolCallParser(tools)
            shown, i = "", 0
            while i < len(text):
                step = rng.randint(1, 6)
                shown += parser.feed(text[i : i + step])
                i += step
            rest = parser.finish()
            assert (shown + rest.text, _names_args_raw(rest.calls), rest.error) == (
                whole.text,
                _names_args_raw(whole.calls),
                whole.error,
            ), text


def _names_args_raw(calls: list[ToolCall]) -> list[tuple[str, str]]:
    return [(c.name, c.arguments) for c in calls]


def test_streaming_shows_plain_text_early() -> None:
    parser = StreamingToolCallParser(TOOLS)
    assert parser.feed("Hello ") == "Hello"
    assert parser.feed("world. ") == " world."
    assert parser.feed("<tool") == ""
    assert parser.feed('_call>{"name": "calculator", "arguments": {"expression": "1"}}</tool_call>') == ""
    assert parser.feed(" Bye") == " Bye"
    result = parser.finish()
    assert result.text == ""
    assert [c.name for c in result.calls] == ["calculator"]


def test_streaming_releases_non_call_code_fence_immediately() -> None:
    parser = StreamingToolCallParser(TOOLS)
    assert parser.feed("```python\nx = {'name': 1}\n") == "```python\nx = {'name': 1}"
    assert parser.feed("```\nok") == "\n```\nok"


def test_streaming_holds_think_content() -> None:
    parser = StreamingToolCallParser(TOOLS)
    shown = parser.feed("<think>secret plan") + parser.feed(" more</think>Visible")
    assert shown == "Visible"
    assert parser.finish().text == ""


def test_stray_close_think_stream() -> None:
    parser = StreamingToolCallParser(TOOLS, thinking=True)
    assert parser.feed("plan plan</thi") == ""
    assert parser.feed("nk>Answer") == "Answer"


def test_finish_twice_is_safe() -> None:
    parser = StreamingToolCallParser(TOOLS)
    parser.feed(TC)
    first = parser.finish()
    assert [c.name for c in first.calls] == ["calculator"]
    assert parser.feed("more") == ""
    assert parser.finish().calls == first.calls


def test_huge_inputs_parse_quickly() -> None:
    cases = [
        '<tool_call>{"name": "calculator", "arguments": {"expression": "' + "x" * 1_000_000,
        "<tool_call>" * 20_000,
        "{" * 200_000,
        "```json\n" + "[" * 100_000,
        "✿FUNCTION✿: a\n✿ARGS✿: " + '"' * 100_000,
        "a" * 1_000_000,
    ]
    for text in cases:
        start = time.perf_counter()
        result = parse_tool_calls(text, TOOLS)
        assert isinstance(result, ParseResult)
        assert time.perf_counter() - start < 10  # generous: proves linear-ish, not a benchmark


def test_streaming_big_reply_in_small_chunks_is_not_quadratic() -> None:
    body = "x = 1\n" * 20_000
    text = '<tool_call>{"name": "calculator", "arguments": {"expression": ' + json.dumps(body) + "}}</tool_call>"
    parser = StreamingToolCallParser(TOOLS)
    start = time.perf_counter()
    for i in range(0, len(text), 4):
        parser.feed(text[i : i + 4])
    result = parser.finish()
    assert time.perf_counter() - start < 20
    assert json.loads(result.calls[0].arguments) == {"expression": body}


# ---------------------------------------------------------------- json_repair


@pytest.mark.parametrize(
    ("damaged", "expected"),
    [
        ('{"a": 1,}', {"a": 1}),
        ("{'a': 'it\\'s'}", {"a": "it's"}),
        ('{"a": True, "b": False, "c": None}', {"a": True, "b": False, "c": None}),
        ('{"a": {"b": [1, 2', {"a": {"b": [1, 2]}}),
        ('{"a": "x', {"a": "x"}),
        ('{"a": 1 "b": 2}', {"a": 1, "b": 2}),
        ('{"a":', {"a": None}),
        ('{"a": 1, "b', {"a": 1, "b": None}),
        ("{a: celsius}", {"a": "celsius"}),
        ('{"p": "C:\\dir"}', {"p": "C:\\dir"}),
        ('{"x": .5, "y": 1.}', {"x": 0.5, "y": 1.0}),
        ('{"a": [1, 2}', {"a": [1, 2]}),
        ('# note\n{"a": 1}', {"a": 1}),
    ],
)
def test_json_repair(damaged: str, expected: Any) -> None:
    assert loads_lenient(damaged) == expected


def test_json_repair_reports_where_value_ends() -> None:
    value, end = load_prefix('{"a": 1} trailing text')
    assert value == {"a": 1} and end == 8
    value, end = load_prefix('{"a": [1, 2} more')
    assert value == {"a": [1, 2]} and '{"a": [1, 2}'[:end] == '{"a": [1, 2}'


@pytest.mark.parametrize("bad", ["", "   ", "hello", "{" * 1000])
def test_json_repair_raises_value_error_only(bad: str) -> None:
    with pytest.raises(ValueError):
        loads_lenient(bad)


# ---------------------------------------------------------------- going in


def test_the_prompt_allows_parallel_calls_and_a_plain_answer_when_no_tool_fits() -> None:
    auto = render_tools_prompt(TOOLS, "auto")
    assert "in one <tool_call> block as a JSON list" in auto and "<tool_call>\n[{" in auto
    example = auto.split("<tool_call>\n[", 1)[1].split("\n</tool_call>", 1)[0]
    assert len(json.loads("[" + example)) == 2
    assert "answer in plain text" in auto and "Leave out an optional argument" in auto
    for forced in ("required", "calculator"):
        text = render_tools_prompt(TOOLS, forced)
        assert "in one <tool_call> block as a JSON list" in text and "answer in plain text" not in text


def test_a_huge_name_is_refused_in_a_short_message() -> None:
    started = time.perf_counter()
    result = parse_tool_calls('<tool_call>{"name": "' + "n" * 10_000_000 + '", "arguments": {}}</tool_call>', TOOLS)
    assert time.perf_counter() - started < 20
    assert result.calls == [] and result.error is not None
    assert "longer than 100 characters" in result.error and len(result.error) < 400


def test_render_tools_prompt_lists_tools_and_format() -> None:
    text = render_tools_prompt(TOOLS, "auto")
    assert "<tools>" in text and "<tool_call>" in text
    for t in TOOLS:
        assert json.dumps(t.to_openai(), ensure_ascii=False) in text
    assert "must" not in text
    assert "must call at least one" in render_tools_prompt(TOOLS, "required")
    named = render_tools_prompt(TOOLS, "web_fetch")
    assert "`web_fetch`" in named and '"calculator"' not in named
    assert render_tools_prompt(TOOLS, "none") == ""
    assert render_tools_prompt([], "auto") == ""


def _history() -> list[Message]:
    a = ToolCall(id="call_a", name="calculator", arguments='{"expression": "2+2"}')
    b = ToolCall(id="call_b", name="web_fetch", arguments='{"url": "https://a.org"}')
    return [
        Message.user("What is 2+2, and what is on a.org?"),
        Message.assistant("Checking both.", [a, b]),
        Message.tool("call_b", "web_fetch", "Page text"),  # results may arrive out of order
        Message.tool("call_a", "calculator", "4"),
        Message.user("Thanks. And 3+3?"),
    ]


def test_inject_tools_creates_system_prompt_and_renders_history() -> None:
    history = _history()
    out = inject_tools(history, TOOLS, "auto")
    assert [m.role for m in out] == ["system", "user", "assistant", "user", "user"]
    assert out[0].content == render_tools_prompt(TOOLS, "auto")
    assert all(not m.tool_calls and m.role != "tool" for m in out)
    assert out[2].content.startswith("Checking both.\n<tool_call>")
    assert out[3].content == "<tool_response>\n4\n</tool_response>\n<tool_response>\nPage text\n</tool_response>"
    assert history[1].tool_calls, "the input messages must not be changed"


def test_inject_tools_round_trip_through_parser() -> None:
    out = inject_tools(_history(), TOOLS, "auto")
    parsed = parse_tool_calls(out[2].content, TOOLS)
    assert parsed.text == "Checking both."
    assert _names_args(parsed.calls) == [("calculator", {"expression": "2+2"}), ("web_fetch", {"url": "https://a.org"})]


def test_inject_tools_merges_into_existing_system_message() -> None:
    out = inject_tools([Message.system("Be brief."), Message.user("hi")], TOOLS, "required")
    assert len(out) == 2 and out[0].role == "system"
    assert out[0].content.startswith("Be brief.\n\n# Tools")
    assert "must call" in out[0].content


@pytest.mark.parametrize(("tools", "choice"), [(None, "auto"), ([], "auto"), (TOOLS, "none")])
def test_inject_tools_without_tools_omits_prompt(tools: list[ToolSpec] | None, choice: str) -> None:
    out = inject_tools(_history(), tools, choice)
    assert out[0].role == "user"
    assert not any("<tools>" in m.content for m in out)
    assert "<tool_response>" in out[2].content


# ---------------------------------------------------------------- tool_choice


def test_forced_schema_required_validates_calls() -> None:
    schema = forced_call_schema(TOOLS, "required")
    assert schema is not None
    jsonschema.Draft202012Validator.check_schema(schema)
    good: list[dict[str, Any]] = [
        {"name": "calculator", "arguments": {"expression": "1+1"}},
        {"name": "web_fetch", "arguments": {"url": "https://x", "max_chars": 10}},
    ]
    bad: list[dict[str, Any]] = [
        {"name": "calculator", "arguments": {"url": "x"}},
        {"name": "nope", "arguments": {}},
        {"name": "web_fetch"},
        {"arguments": {"expression": "1"}},
    ]
    for doc in good:
        jsonschema.validate(doc, schema)
    for doc in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, schema)


def test_forced_schema_holds_arguments_to_the_declared_keys_unless_the_tool_allows_more() -> None:
    open_tool = ToolSpec(name="o", parameters={"type": "object", "properties": {"a": {}}, "additionalProperties": True})
    schema = forced_call_schema([FETCH, open_tool], "required")
    assert schema is not None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "web_fetch", "arguments": {"url": "u", "url ": "x"}}, schema)
    jsonschema.validate({"name": "o", "arguments": {"a": 1, "b": 2}}, schema)
    assert "additionalProperties" not in (FETCH.parameters or {}), "the tool's own schema is left as it was"


def test_nested_objects_are_held_to_their_declared_keys_too() -> None:
    body = {"type": "object", "properties": {"mode": {"type": "string"}}}
    free = {"type": "object", "properties": {}}
    params = {"type": "object", "properties": {"body": body, "extra": free, "items": {"type": "array", "items": body}}}
    schema = forced_call_schema([ToolSpec(name="ac", parameters=params)], "required")
    assert schema is not None
    jsonschema.validate({"name": "ac", "arguments": {"body": {"mode": "COOL"}, "extra": {"any": 1}}}, schema)
    for bad in ({"body": {"mode ": "COOL"}}, {"items": [{"mode": "a", "x": 1}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"name": "ac", "arguments": bad}, schema)
    assert "additionalProperties" not in body, "the tool's own schema is left as it was"


def test_forced_schema_named_tool_only() -> None:
    schema = forced_call_schema(TOOLS, "web_fetch")
    assert schema is not None
    jsonschema.validate({"name": "web_fetch", "arguments": {"url": "u"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "calculator", "arguments": {"expression": "1"}}, schema)


def test_forced_schema_hoists_defs() -> None:
    tool = ToolSpec(
        name="t",
        parameters={
            "type": "object",
            "properties": {"p": {"$ref": "#/$defs/P"}},
            "$defs": {"P": {"type": "integer"}},
        },
    )
    schema = forced_call_schema([tool, CALC], "required")
    assert schema is not None and "P" in schema["$defs"]
    jsonschema.validate({"name": "t", "arguments": {"p": 3}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "t", "arguments": {"p": "x"}}, schema)


def test_forced_schema_none_for_auto_and_none() -> None:
    assert forced_call_schema(TOOLS, "auto") is None
    assert forced_call_schema(TOOLS, "none") is None
    assert forced_call_schema(None, "required") is None
    with pytest.raises(ValueError):
        forced_call_schema(TOOLS, "missing_tool")


def test_parse_forced_calls() -> None:
    (call,) = parse_forced_calls('{"name": "calculator", "arguments": {"expression": "6*7"}}')
    assert call.name == "calculator" and json.loads(call.arguments) == {"expression": "6*7"}
    two = parse_forced_calls(
        '[{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "web_fetch", "arguments": {"url": "u"}}]'
    )
    assert _names_args(two) == [("calculator", {"expression": "1"}), ("web_fetch", {"url": "u"})]
    with pytest.raises(ValueError):
        parse_forced_calls("no call here")


@pytest.mark.parametrize("choice", ["required", "calculator"])
def test_forced_schema_allows_one_or_more_calls(choice: str) -> None:
    schema = forced_call_schema(TOOLS, choice)
    assert schema is not None
    one = {"name": "calculator", "arguments": {"expression": "1"}}
    jsonschema.validate(one, schema)
    jsonschema.validate([one, one], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([one, {"name": "calculator"}], schema)


def test_apply_tool_choice() -> None:
    calc = ToolCall(name="calculator", arguments="{}")
    fetch = ToolCall(name="web_fetch", arguments="{}")
    both = ParseResult(text="t", calls=[calc, fetch])
    assert apply_tool_choice(both, "auto") == both
    assert apply_tool_choice(both, "none") == ParseResult(text="t")
    assert apply_tool_choice(ParseResult(text="t", error="bad"), "none").error is None
    assert apply_tool_choice(both, "required") == both
    assert apply_tool_choice(ParseResult(text="t"), "required").error == (
        "a tool call was required, but the reply has none"
    )
    named = apply_tool_choice(both, "web_fetch")
    assert named.calls == [fetch] and named.error is None
    only_other = apply_tool_choice(ParseResult(calls=[calc]), "web_fetch")
    assert only_other.calls == [] and only_other.error is not None and "calculator" in only_other.error


def test_auto_call_grammar_holds_a_list_of_typed_calls() -> None:
    grammar = auto_call_grammar(TOOLS)
    assert grammar is not None and auto_call_grammar([]) is None
    head, rule = grammar.splitlines()[:2]
    assert head == "%llguidance {}"
    assert rule == 'start: "<tool_call>\\n" calls "\\n</tool_call>"', "tags as text: the special-token form is dropped"
    schema = json.loads(grammar.split("calls: %json ", 1)[1])
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(
        [
            {"name": "calculator", "arguments": {"expression": "1+1"}},
            {"name": "web_fetch", "arguments": {"url": "https://x", "max_chars": 10}},
        ],
        schema,
    )
    for bad in ([], {"name": "calculator", "arguments": {"expression": "1"}}, [{"name": "web_fetch", "arguments": {}}]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
