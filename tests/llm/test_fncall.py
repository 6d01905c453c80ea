"""Prompt-based function calling: the parser table, streaming, prompt injection, tool_choice."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import jsonschema
import pytest

from lector.llm.fncall import (
    ParseResult,
    StreamingToolCallParser,
    apply_tool_choice,
    forced_call_schema,
    inject_tools,
    parse_forced_call,
    parse_tool_calls,
    render_tools_prompt,
)
from lector.llm.json_repair import load_prefix, loads_lenient
from lector.llm.messages import Message, ToolCall, ToolSpec

CALC = ToolSpec(
    name="calculator",
    description="Evaluate arithmetic.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)
FETCH = ToolSpec(
    name="web_fetch",
    description="Fetch a URL.",
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string"}, "max_chars": {"type": "integer"}},
        "required": ["url"],
    },
)
TOOLS = [CALC, FETCH]

E = {"expression": "2+2"}
TC = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>'

# (id, model output, expected calls as (name, arguments), expected text, error substring or None)
# Every case is parsed with TOOLS known, except where the id ends in "-notools".
CASES: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str, str | None]] = [
    # --- well-formed
    ("hermes", TC, [("calculator", E)], "", None),
    ("hermes-with-text", "Let me compute that.\n" + TC, [("calculator", E)], "Let me compute that.", None),
    (
        "hermes-parallel",
        TC + '\n<tool_call>\n{"name": "web_fetch", "arguments": {"url": "https://a.org"}}\n</tool_call>',
        [("calculator", E), ("web_fetch", {"url": "https://a.org"})],
        "",
        None,
    ),
    ("hermes-no-close", '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}',
     [("calculator", E)], "", None),
    ("hermes-parameters-key", '<tool_call>{"name": "calculator", "parameters": {"expression": "2+2"}}</tool_call>',
     [("calculator", E)], "", None),
    ("hermes-openai-shape",
     '<tool_call>{"type": "function", "function": {"name": "calculator", "arguments": "{\\"expression\\": '
     '\\"2+2\\"}"}}</tool_call>', [("calculator", E)], "", None),
    ("hermes-args-as-string", '<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"2+2\\"}"}'
     "</tool_call>", [("calculator", E)], "", None),
    ("hermes-no-arguments", '<tool_call>{"name": "calculator"}</tool_call>', [("calculator", {})], "", None),
    ("hermes-list-in-one-block",
     '<tool_call>[{"name": "calculator", "arguments": {"expression": "1"}}, '
     '{"name": "calculator", "arguments": {"expression": "2"}}]</tool_call>',
     [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})], "", None),
    ("hermes-fence-inside-tag", '<tool_call>\n```json\n{"name": "calculator", "arguments": {"expression": "2+2"}}'
     "\n```\n</tool_call>", [("calculator", E)], "", None),
    ("hermes-second-missing-close",
     '<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}\n'
     '<tool_call>{"name": "calculator", "arguments": {"expression": "2"}}</tool_call>',
     [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})], "", None),
    ("fenced-json", 'I will use the calculator.\n```json\n{"name": "calculator", "arguments": {"expression": '
     '"2+2"}}\n```', [("calculator", E)], "I will use the calculator.", None),
    ("fenced-plain", '```\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```',
     [("calculator", E)], "", None),
    ("fenced-tool_call-lang", '```tool_call\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```',
     [("calculator", E)], "", None),
    ("fenced-list", '```json\n[{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "web_fetch", '
     '"arguments": {"url": "u"}}]\n```', [("calculator", {"expression": "1"}), ("web_fetch", {"url": "u"})], "",
     None),
    ("bare-json", '{"name": "calculator", "arguments": {"expression": "2+2"}}', [("calculator", E)], "", None),
    ("bare-json-then-text", '  {"name": "calculator", "arguments": {"expression": "2+2"}}\nThen I will answer.',
     [("calculator", E)], "Then I will answer.", None),
    ("bare-list", '[{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "calculator", '
     '"arguments": {"expression": "2"}}]', [("calculator", {"expression": "1"}), ("calculator",
                                                                                 {"expression": "2"})], "", None),
    ("embedded-known-tool", 'Sure, calling {"name": "calculator", "arguments": {"expression": "2+2"}} now.',
     [("calculator", E)], "Sure, calling now.", None),
    ("qwen-markers", "✿FUNCTION✿: calculator\n✿ARGS✿: {\"expression\": \"2+2\"}\n✿RESULT✿: 4\n✿RETURN✿: It is 4",
     [("calculator", E)], "", None),
    ("qwen-markers-two", "Let me see.\n✿FUNCTION✿: calculator\n✿ARGS✿: {\"expression\": \"1\"}\n"
     "✿FUNCTION✿: web_fetch\n✿ARGS✿: {\"url\": \"u\"}", [("calculator", {"expression": "1"}),
                                                       ("web_fetch", {"url": "u"})], "Let me see.", None),
    ("qwen3-coder-xml", "<tool_call>\n<function=web_fetch>\n<parameter=url>\nhttps://a.org\n</parameter>\n"
     "<parameter=max_chars>\n500\n</parameter>\n</function>\n</tool_call>",
     [("web_fetch", {"url": "https://a.org", "max_chars": 500})], "", None),
    ("qwen3-coder-xml-string-stays-string", "<tool_call><function=calculator><parameter=expression>12"
     "</parameter></function></tool_call>", [("calculator", {"expression": "12"})], "", None),
    ("imagined-response-dropped", TC + "\n<tool_response>\n4\n</tool_response>\nThe answer is 4.",
     [("calculator", E)], "", None),
    ("think-then-call", "<think>The user wants 2+2. I should call the calculator.</think>\n" + TC,
     [("calculator", E)], "", None),
    ("plain-answer", "The answer is 4.", [], "The answer is 4.", None),
    ("unicode", '<tool_call>{"name": "web_fetch", "arguments": {"url": "https://例え.jp/ü?q=ß", "max_chars": 5}}'
     "</tool_call>日本語の説明", [("web_fetch", {"url": "https://例え.jp/ü?q=ß", "max_chars": 5})], "日本語の説明",
     None),
    # --- malformed but repairable
    ("trailing-comma", '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2",},}</tool_call>',
     [("calculator", E)], "", None),
    ("single-quotes", "<tool_call>{'name': 'calculator', 'arguments': {'expression': '2+2'}}</tool_call>",
     [("calculator", E)], "", None),
    ("python-literals", '<tool_call>{"name": "web_fetch", "arguments": {"url": "u", "raw": True, "x": None}}'
     "</tool_call>", [("web_fetch", {"url": "u", "raw": True, "x": None})], "", None),
    ("missing-braces-at-end", '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2"</tool_call>',
     [("calculator", E)], "", None),
    ("truncated-output", '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+',
     [("calculator", {"expression": "2+"})], "", None),
    ("raw-newline-in-string", '<tool_call>{"name": "calculator", "arguments": {"expression": "1 +\n2"}}'
     "</tool_call>", [("calculator", {"expression": "1 +\n2"})], "", None),
    ("comments", '```json\n{\n  // the tool\n  "name": "calculator", /* why */ "arguments": {"expression": "2+2"}\n}'
     "\n```", [("calculator", E)], "", None),
    ("unescaped-inner-quotes", '<tool_call>{"name": "calculator", "arguments": {"expression": "len("ab")"}}'
     "</tool_call>", [("calculator", {"expression": 'len("ab")'})], "", None),
    # --- adversarial
    ("nested-braces-in-strings", '<tool_call>{"name": "calculator", "arguments": {"expression": "{[}] \\" }}"}}'
     "</tool_call>", [("calculator", {"expression": '{[}] " }}'})], "", None),
    ("fence-with-user-json", 'Here is the JSON you asked for:\n```json\n{"name": "Ada", "age": 36}\n```',
     [], 'Here is the JSON you asked for:\n```json\n{"name": "Ada", "age": 36}\n```', None),
    ("fence-unknown-tool-is-data", '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```', [],
     '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```', None),
    ("tag-unknown-tool-is-call", '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
     [("get_weather", {"city": "Paris"})], "", None),
    ("python-fence-with-markup", '```python\nprint("<tool_call>{}</tool_call>")\n```\nDone.', [],
     '```python\nprint("<tool_call>{}</tool_call>")\n```\nDone.', None),
    ("call-inside-think", '<think>maybe <tool_call>{"name": "calculator", "arguments": {}}</tool_call></think>'
     "No tool needed: 4.", [], "No tool needed: 4.", None),
    ("unclosed-think", '<think>I might call {"name": "calculator", "arguments": {"expression": "1"}}', [], "", None),
    ("close-think-only", "the user wants a number</think>\n\n" + TC, [("calculator", E)], "", None),
    ("braces-in-prose", "Sets look like {1, 2} and maps like {a: b}.", [],
     "Sets look like {1, 2} and maps like {a: b}.", None),
    ("bare-json-not-a-call", '{"answer": 42}', [], '{"answer": 42}', None),
    ("lone-flower", "I ✿ love flowers", [], "I ✿ love flowers", None),
    ("not-json-in-tag", "<tool_call>call the calculator please</tool_call>", [], "", "tool call 1 is not valid JSON"),
    ("empty-tag", "Hmm <tool_call></tool_call>", [], "Hmm", "tool call 1 is empty"),
    ("no-name-in-tag", '<tool_call>{"arguments": {"expression": "1"}}</tool_call>', [], "",
     "tool call 1 has no function name"),
    ("args-not-object", '<tool_call>{"name": "calculator", "arguments": [1, 2]}</tool_call>', [], "",
     "arguments must be a JSON object"),
    ("args-string-garbage", '<tool_call>{"name": "calculator", "arguments": "two plus two"}</tool_call>', [], "",
     "arguments string is not valid JSON"),
    ("one-good-one-bad", TC + "\n<tool_call>oops</tool_call>", [("calculator", E)], "",
     "tool call 2 is not valid JSON"),
    ("garbage", "\x00\x01}{][<<>>``✿" * 50, [], "\x00\x01}{][<<>>``✿" * 50, None),
    ("deeply-nested", "<tool_call>" + '{"a":' * 5000 + "</tool_call>", [], "", "not valid JSON"),
    ("fence-unclosed-call", '```json\n{"name": "calculator", "arguments": {"expression": "2+2"}}',
     [("calculator", E)], "", None),
    ("fence-unknown-notools", '```json\n{"name": "anything", "arguments": {"x": 1}}\n```',
     [("anything", {"x": 1})], "", None),
]


def _names_args(calls: list[ToolCall]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, json.loads(c.arguments)) for c in calls]


@pytest.mark.parametrize(
    ("output", "calls", "text", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
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
    output = "Let me check.\n" + TC + "\nand\n```json\n{\"name\": \"web_fetch\", \"arguments\": {\"url\": \"u\"}}\n```"
    parser = StreamingToolCallParser(TOOLS)
    shown = "".join(parser.feed(output[i : i + size]) for i in range(0, len(output), size))
    rest = parser.finish()
    assert shown + rest.text == "Let me check.\nand"
    assert [c.name for c in rest.calls] == ["calculator", "web_fetch"]


FUZZ_PARTS = [
    "<tool_call>", "</tool_call>", "<think>", "</think>", "```", "```json\n", "```python\n", "✿FUNCTION✿: calculator\n",
    "✿ARGS✿: ", "✿RESULT✿", "✿", '{"name": "calculator", "arguments": {"expression": "1"}}', '{"name": "x"}', "{",
    "}", "[", "]", '"', "'", "\n", " ", "  \n\n ", "hello", "<", "<tool", "`", "\\", ",", ":", '"name"',
    "<tool_response>", "<function=calculator><parameter=expression>2</parameter></function>",
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
                whole.text, _names_args_raw(whole.calls), whole.error
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
        ("# note\n{\"a\": 1}", {"a": 1}),
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


def test_parse_forced_call() -> None:
    call = parse_forced_call('{"name": "calculator", "arguments": {"expression": "6*7"}}')
    assert call.name == "calculator" and json.loads(call.arguments) == {"expression": "6*7"}
    with pytest.raises(ValueError):
        parse_forced_call("no call here")


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
