"""The OpenAI wire format both ways: what a client sends and reads is what a server reads and writes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from lector.llm.backend import ChatOptions, Usage
from lector.llm.messages import Message, ToolCall
from lector.llm.openai_wire import (
    SSE_DONE,
    CompletionId,
    ToolCallFragments,
    WireFormatError,
    read_chunk,
    request_body,
    schema_from_response_format,
    sse_payloads,
    tool_call_json,
    tool_choice_from_json,
    tool_choice_json,
    tools_from_json,
)
from tests.llm.call_cases import TOOLS


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


async def payloads_of(events: str) -> list[str]:
    return [p async for p in sse_payloads(_lines(events))]


async def test_what_a_server_writes_a_client_reads_back() -> None:
    ident = CompletionId("chatcmpl-1", 7, "m")
    call = ToolCall(id="call_1", name="calculator", arguments='{"expression": "1"}')
    events = (
        ": keep-alive\n\n"
        + ident.chunk({"content": "Hi"})
        + ident.chunk({"tool_calls": [tool_call_json(call, 0)]}, "tool_calls")
        + ident.usage_chunk(Usage(prompt_tokens=3, completion_tokens=2))
        + SSE_DONE
        + ident.chunk({"content": "after the end"})
    )
    chunks = [read_chunk(json.loads(p)) for p in await payloads_of(events)]
    assert [c.text for c in chunks] == ["Hi", "", ""]
    fragments = ToolCallFragments()
    for chunk in chunks:
        for fragment in chunk.fragments:
            fragments.add(fragment)
    assert fragments.calls() == [call]
    assert chunks[1].finish_reason == "tool_calls"
    assert chunks[2].usage == Usage(prompt_tokens=3, completion_tokens=2)


async def test_a_multi_line_event_and_a_stream_cut_before_its_blank_line() -> None:
    assert await payloads_of('data: {"a":\ndata: 1}\n\ndata: {"b": 2}') == ['{"a":\n1}', '{"b": 2}']


def test_fragments_of_calls_sent_whole_without_an_index() -> None:
    fragments = ToolCallFragments()
    fragments.add({"id": "call_a", "function": {"name": "add", "arguments": '{"a": 1'}})
    fragments.add({"function": {"arguments": "}"}})
    fragments.add({"id": "call_b", "function": {"name": "sub", "arguments": {"b": 2}}})
    assert [(c.id, c.name, c.arguments) for c in fragments.calls()] == [
        ("call_a", "add", '{"a": 1}'),
        ("call_b", "sub", '{"b": 2}'),
    ]


def test_chunks_are_valid_unicode_whatever_the_model_wrote() -> None:
    chunk = CompletionId("c", 1, "m").chunk({"content": "a\ud800b"})
    assert json.loads(chunk.removeprefix("data: "))["choices"][0]["delta"]["content"] == "a\ufffdb"
    chunk.encode("utf-8")


@pytest.mark.parametrize("choice", ["auto", "none", "required", "web_fetch"])
def test_tool_choice_round_trips(choice: str) -> None:
    assert tool_choice_from_json(tool_choice_json(choice)) == choice


def test_a_request_body_read_back_by_a_server() -> None:
    schema = {"type": "object"}
    options = ChatOptions(temperature=0.5, max_tokens=9, tool_choice="required")
    body = request_body([Message.user("hi")], options, model="m", tools=TOOLS, schema=schema)
    assert body["model"] == "m" and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["max_tokens"]) == (0.5, 9) and "seed" not in body
    assert tools_from_json(body["tools"]) == TOOLS
    assert tool_choice_from_json(body["tool_choice"]) == "required"
    assert schema_from_response_format(body["response_format"]) == schema
    assert "model" not in request_body([], ChatOptions())


@pytest.mark.parametrize(
    ("read", "raw", "param"),
    [
        (tool_choice_from_json, "sometimes", "tool_choice"),
        (tool_choice_from_json, {"type": "function"}, "tool_choice"),
        (tools_from_json, [{"type": "function"}], "tools"),
        (schema_from_response_format, {"type": "json_schema", "json_schema": {}}, "response_format"),
    ],
)
def test_malformed_request_fields_name_the_field(read: object, raw: object, param: str) -> None:
    with pytest.raises(WireFormatError) as caught:
        read(raw)  # type: ignore[operator]
    assert caught.value.param == param
