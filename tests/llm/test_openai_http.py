"""The OpenAI-compatible HTTP backend against a real local HTTP server (tests/llm/openai_test_server.py)."""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lector.llm.backend import ChatOptions, Delta
from lector.llm.errors import BackendUnavailableError, ContextOverflowError, LLMError, ModelNotFoundError
from lector.llm.factory import make_backend
from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.openai_http import OpenAIBackend, _normalise_base_url, approximate_tokens
from tests.llm.call_cases import ADD

sys.path.insert(0, str(Path(__file__).parent))
from openai_test_server import (  # noqa: E402
    API_KEY,
    MAX_MODEL_LEN,
    SERVED_MODEL,
    TEXT_PIECES,
    OpenAITestServer,
    free_port,
)

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TOOLS = [ADD, WEATHER]
ASK = [Message.system("You are terse."), Message.user("What is 2 + 3?")]
ASK_BOTH = [Message.user("What is 2 + 3, and the weather in Paris?")]
ASK_OSLO = [Message.user("What is 1 + 2, and the weather in Oslo?")]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(slow_seconds=3.0) as srv:
        yield srv


def unique(scenario: str) -> str:
    return f"{scenario}:{uuid.uuid4().hex[:8]}"


def backend(server: OpenAITestServer, model: str, flavor: str = "vllm", **kw: object) -> OpenAIBackend:
    kw.setdefault("backoff_base", 0.01)
    return OpenAIBackend(base_url=server.url(flavor), model=model, **kw)  # type: ignore[arg-type]


async def collect(b: OpenAIBackend, *args: object, **kw: object) -> list[Delta]:
    return [d async for d in b.astream(*args, **kw)]  # type: ignore[arg-type]


# ---------------------------------------------------------------- streaming text


async def test_streams_text_as_deltas_with_server_usage(server: OpenAITestServer) -> None:
    model = unique("text")
    deltas = await collect(backend(server, model), ASK)
    assert [d.text for d in deltas if d.text] == TEXT_PIECES
    last = deltas[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None and (last.usage.prompt_tokens, last.usage.completion_tokens) == (17, 5)
    (request,) = server.chat_requests(model)
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert "tools" not in request.body


def test_sync_chat_and_stream(server: OpenAITestServer) -> None:
    b = backend(server, unique("text"))
    result = b.chat(ASK, options=ChatOptions(temperature=0.2, max_tokens=16, seed=7, stop=["\n\n"]))
    assert result.message.content == "Hello from the test server."
    assert result.usage.total_tokens == 22
    assert "".join(d.text for d in b.stream(ASK)) == "Hello from the test server."
    body = server.chat_requests(b.model)[0].body
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stop"]) == (0.2, 16, 7, ["\n\n"])


def test_stopping_a_sync_stream_early_is_clean(server: OpenAITestServer) -> None:
    b = backend(server, unique("text"))
    stream = b.stream(ASK)
    assert next(iter(stream)).text == "Hello"
    stream.close()  # type: ignore[attr-defined]


async def test_usage_is_estimated_when_the_server_sends_none(server: OpenAITestServer) -> None:
    deltas = await collect(backend(server, unique("text-nousage")), ASK)
    usage = deltas[-1].usage
    assert usage is not None and usage.prompt_tokens > 0
    assert usage.completion_tokens == approximate_tokens("".join(TEXT_PIECES))


async def test_json_schema_becomes_response_format(server: OpenAITestServer) -> None:
    model = unique("text")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await collect(backend(server, model), ASK, None, ChatOptions(json_schema=schema))
    fmt = server.chat_requests(model)[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema


# ---------------------------------------------------------------- native tool calls


async def test_native_tool_call_fragments_become_complete_calls(server: OpenAITestServer) -> None:
    model = unique("tool-calls")
    deltas = await collect(backend(server, model, native_tools=True), ASK_BOTH, TOOLS)
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.id, c.name, c.parsed_arguments()) for c in calls] == [
        ("call_w", "get_weather", {"city": "Paris"}),
        ("call_a", "add", {"a": 2, "b": 3}),
    ]
    assert len([d for d in deltas if d.tool_calls]) == 1, "calls are emitted once, complete"
    assert deltas[-1].finish_reason == "tool_calls"
    body = server.chat_requests(model)[0].body
    assert [t["function"]["name"] for t in body["tools"]] == ["add", "get_weather"]
    assert body["tool_choice"] == "auto"


async def test_native_server_that_answers_calls_as_text(server: OpenAITestServer) -> None:
    model = unique("json-call")
    deltas = await collect(backend(server, model, native_tools=True), ASK, TOOLS)
    assert [(c.name, c.parsed_arguments()) for d in deltas for c in d.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert "".join(d.text for d in deltas).strip() == "I will add them."
    assert "tools" in server.chat_requests(model)[0].body
    plain = await collect(backend(server, unique("text"), native_tools=True), ASK, TOOLS)
    assert "".join(d.text for d in plain) == "Hello from the test server."
    assert not [c for d in plain for c in d.tool_calls]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
    ],
)
async def test_tool_choice_maps_to_the_openai_field(server: OpenAITestServer, choice: str, wire: object) -> None:
    model = unique("tool-calls")
    await collect(backend(server, model, native_tools=True), ASK, TOOLS, ChatOptions(tool_choice=choice))
    assert server.chat_requests(model)[0].body["tool_choice"] == wire


# ---------------------------------------------------------------- prompt-based tool calls


async def test_prompt_based_calls_from_a_json_block(server: OpenAITestServer) -> None:
    model = unique("json-call")
    b = backend(server, model, native_tools=False)
    deltas = await collect(b, ASK, TOOLS)
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.name, c.parsed_arguments()) for c in calls] == [("add", {"a": 2, "b": 3})]
    text = "".join(d.text for d in deltas)
    assert "I will add them." in text and "```" not in text and '"arguments"' not in text
    assert deltas[-1].finish_reason == "tool_calls"
    body = server.chat_requests(model)[0].body
    assert "tools" not in body and "tool_choice" not in body
    assert "get_weather" in json.dumps(body["messages"]), "tool specs are rendered into the prompt"


async def test_prompt_based_parallel_tagged_calls(server: OpenAITestServer) -> None:
    deltas = await collect(backend(server, unique("tagged-calls"), native_tools=False), ASK_OSLO, TOOLS)
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.name, c.parsed_arguments()) for c in calls] == [
        ("add", {"a": 1, "b": 2}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert "<tool_call>" not in "".join(d.text for d in deltas)


PARALLEL_IN_ONE_FENCE = (
    '```json\n{"name": "add", "arguments": {"a": "1", "b": 2}}\n{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    "\n```"
)


@pytest.mark.parametrize("native", [True, False], ids=["native-tools", "prompt-based"])
async def test_parallel_calls_written_in_one_fence_on_either_path(server: OpenAITestServer, native: bool) -> None:
    key = uuid.uuid4().hex[:8]
    server.scripts[key] = PARALLEL_IN_ONE_FENCE
    deltas = await collect(backend(server, f"script:{key}", native_tools=native), ASK_OSLO, TOOLS)
    calls = [c for d in deltas for c in d.tool_calls]
    expected = [("add", {"a": 1, "b": 2}), ("get_weather", {"city": "Oslo"})]
    assert [(c.name, c.parsed_arguments()) for c in calls] == expected
    assert not "".join(d.text for d in deltas).strip()
    assert deltas[-1].tool_call_error is None


async def test_rejected_tools_switch_to_prompt_based_calling(server: OpenAITestServer) -> None:
    model = unique("no-tools")
    b = backend(server, model, flavor="llamacpp")
    assert b.native_tools is True  # optimistic until the server says otherwise
    deltas = await collect(b, ASK, TOOLS)
    assert [(c.name, c.parsed_arguments()) for d in deltas for c in d.tool_calls] == [("add", {"a": 2, "b": 3})]
    first, second = server.chat_requests(model)
    assert "tools" in first.body and "tools" not in second.body
    assert b.native_tools is False
    await collect(b, ASK, TOOLS)
    assert len(server.chat_requests(model)) == 3, "the fallback is remembered"


async def test_forced_call_in_prompt_mode_uses_a_json_schema(server: OpenAITestServer) -> None:
    model = unique("no-tools-json")
    b = backend(server, model, native_tools=False)
    deltas = await collect(b, ASK, TOOLS, ChatOptions(tool_choice="add"))
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.name, c.parsed_arguments()) for c in calls] == [("add", {"a": 4, "b": 5})]
    assert not "".join(d.text for d in deltas)
    fmt = server.chat_requests(model)[0].body["response_format"]
    assert fmt["type"] == "json_schema"


async def test_prompt_mode_turns_tool_history_into_text(server: OpenAITestServer) -> None:
    model = unique("text")
    call = ToolCall(id="call_1", name="add", arguments='{"a": 2, "b": 3}')
    history = [*ASK, Message.assistant("", [call]), Message.tool("call_1", "add", "5")]
    for tools in (TOOLS, None):
        deltas = await collect(backend(server, model, native_tools=False), history, tools)
        assert "".join(d.text for d in deltas) == "Hello from the test server."
    for request in server.chat_requests(model):
        sent = request.body["messages"]
        assert all(m["role"] in ("system", "user", "assistant") and not m.get("tool_calls") for m in sent)
        assert "<tool_response>" in json.dumps(sent)


async def test_missing_forced_call_is_reported_to_the_agent(server: OpenAITestServer) -> None:
    model = unique("text")  # a server that ignores response_format and just chats
    deltas = await collect(backend(server, model, native_tools=False), ASK, TOOLS, ChatOptions(tool_choice="required"))
    last = deltas[-1]
    assert not last.tool_calls and last.tool_call_error and "required" in last.tool_call_error
    assert "".join(d.text for d in deltas) == "Hello from the test server."


async def test_errors_without_tools_are_not_taken_for_tool_rejection(server: OpenAITestServer) -> None:
    model = unique("bad-request")
    with pytest.raises(LLMError, match="temperature must be non-negative"):
        await collect(backend(server, model), ASK, TOOLS)
    assert len(server.chat_requests(model)) == 1


# ---------------------------------------------------------------- retries


async def test_429_is_retried_after_retry_after(server: OpenAITestServer) -> None:
    model = unique("429")
    start = time.monotonic()
    deltas = await collect(backend(server, model), ASK)
    assert "".join(d.text for d in deltas) == "Hello from the test server."
    assert len(server.chat_requests(model)) == 2
    assert time.monotonic() - start >= 0.25, "Retry-After: 0.3 was honoured"


async def test_5xx_is_retried_with_backoff(server: OpenAITestServer) -> None:
    model = unique("500x2")
    deltas = await collect(backend(server, model, max_retries=3), ASK)
    assert "".join(d.text for d in deltas) == "Hello from the test server."
    assert len(server.chat_requests(model)) == 3


async def test_retries_give_up_with_the_server_message(server: OpenAITestServer) -> None:
    model = unique("always-503")
    with pytest.raises(LLMError, match="HTTP 503.*model is loading"):
        await collect(backend(server, model, max_retries=2), ASK)
    assert len(server.chat_requests(model)) == 3


async def test_no_retry_once_output_was_streamed(server: OpenAITestServer) -> None:
    model = unique("drop")
    got: list[str] = []
    with pytest.raises(LLMError, match="lost mid-reply"):
        async for d in backend(server, model).astream(ASK):
            got.append(d.text)
    assert "".join(got) == "Hello from"
    assert len(server.chat_requests(model)) == 1


# ---------------------------------------------------------------- clear errors


@pytest.mark.parametrize("scenario", ["overflow-vllm", "overflow-llamacpp", "overflow-openai", "stream-error"])
async def test_context_overflow_is_a_clear_error(server: OpenAITestServer, scenario: str) -> None:
    model = unique(scenario)
    with pytest.raises(ContextOverflowError, match="context window"):
        await collect(backend(server, model), ASK)
    assert len(server.chat_requests(model)) == 1, "an overflow is never retried"


async def test_server_that_is_not_there() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    b = OpenAIBackend(base_url=url, model="m", max_retries=1, backoff_base=0.01)
    with pytest.raises(BackendUnavailableError, match=r"no model server at .* \(connection refused\)"):
        await collect(b, ASK)
    with pytest.raises(BackendUnavailableError):
        b.chat(ASK)


async def test_authentication_failure_is_clear(server: OpenAITestServer) -> None:
    model = unique("auth")
    with pytest.raises(LLMError, match="authentication failed .*HTTP 401.*Incorrect API key"):
        await collect(backend(server, model), ASK)
    assert len(server.chat_requests(model)) == 1
    deltas = await collect(backend(server, model, api_key=API_KEY), ASK)
    assert "".join(d.text for d in deltas) == "Hello from the test server."


async def test_unknown_model(server: OpenAITestServer) -> None:
    with pytest.raises(ModelNotFoundError, match="nosuch"):
        await collect(backend(server, "nosuch"), ASK)


async def test_read_timeout_before_output_is_clear_and_not_retried(server: OpenAITestServer) -> None:
    model = unique("slow")
    with pytest.raises(BackendUnavailableError, match="read timeout"):
        await collect(backend(server, model, timeout=0.5), ASK)
    assert len(server.chat_requests(model)) == 1


async def test_silence_mid_reply_times_out(server: OpenAITestServer) -> None:
    model = unique("stall")
    with pytest.raises(LLMError, match="went silent mid-reply"):
        await collect(backend(server, model, timeout=0.5), ASK)
    assert len(server.chat_requests(model)) == 1


# ---------------------------------------------------------------- token counting and discovery


def tokenize_requests(server: OpenAITestServer, flavor: str) -> int:
    return sum(1 for r in server.requests if r.path == f"/{flavor}/tokenize")


def test_count_tokens_uses_vllm_tokenize_and_caches(server: OpenAITestServer) -> None:
    b = backend(server, SERVED_MODEL)
    before = tokenize_requests(server, "vllm")
    text = "alpha beta gamma " + uuid.uuid4().hex
    assert b.count_tokens(text) == 4
    sent = tokenize_requests(server, "vllm") - before
    assert b.count_tokens(text) == 4
    assert tokenize_requests(server, "vllm") - before == sent, "the second count comes from the cache"
    assert b.count_tokens("") == 0
    assert b.context_size == MAX_MODEL_LEN, "vLLM's tokenize reports max_model_len"


def test_count_tokens_uses_llamacpp_tokenize(server: OpenAITestServer) -> None:
    b = backend(server, "m", flavor="llamacpp")
    assert b.count_tokens("one two three") == 3
    assert b.count_tokens("four five") == 2
    sent = [r.body for r in server.requests if r.path == "/llamacpp/tokenize"]
    assert sent[-1] == {"content": "four five", "add_special": False}


def test_count_tokens_approximates_without_tokenize(server: OpenAITestServer) -> None:
    b = backend(server, "m", flavor="plain")
    text = "x" * 70
    assert b.count_tokens(text) == math.ceil(70 / 3.5)
    before = tokenize_requests(server, "plain")
    assert b.count_tokens("y" * 35) == 10
    assert tokenize_requests(server, "plain") == before, "a missing /tokenize is asked about once"


def test_count_tokens_with_no_server_approximates() -> None:
    b = OpenAIBackend(base_url=f"http://127.0.0.1:{free_port()}", model="m")
    assert b.count_tokens("abcdefg") == 2


async def test_default_model_and_context_size_come_from_the_server(server: OpenAITestServer) -> None:
    b = OpenAIBackend(base_url=server.url("vllm"))
    await collect(b, ASK)
    assert b.model == SERVED_MODEL and b.context_size == MAX_MODEL_LEN
    assert server.requests[-1].model == SERVED_MODEL
    b2 = OpenAIBackend(base_url=server.url("vllm"), context_size=2048)
    await collect(b2, ASK)
    assert b2.context_size == 2048, "an explicit context size wins"


def test_base_url_normalisation() -> None:
    assert _normalise_base_url("http://h:8000") == "http://h:8000/v1"
    assert _normalise_base_url("http://h:8000/") == "http://h:8000/v1"
    assert _normalise_base_url("h:8000/v1/") == "http://h:8000/v1"
    assert _normalise_base_url("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"


def test_factory_builds_the_http_backend(server: OpenAITestServer) -> None:
    b = make_backend(f"openai:{server.url('plain')}#{unique('text')}")
    assert isinstance(b, OpenAIBackend)
    assert b.chat(ASK).message.content == "Hello from the test server."


# ---------------------------------------------------------------- against llama.cpp's own server (xllamacpp)


@pytest.fixture(scope="module")
def llama_server(small_model: object) -> OpenAIBackend:
    """The HTTP backend pointed at the llama.cpp server inside the embedded engine (0.5B, 4k context)."""
    engine = small_model._get_engine()  # type: ignore[attr-defined]
    return OpenAIBackend(base_url=engine.address, model="qwen2.5-coder-0.5b", api_key=engine.api_key)


async def test_real_llamacpp_server_streams_and_tokenizes(llama_server: OpenAIBackend, small_model: object) -> None:
    deltas = await collect(
        llama_server,
        [Message.user("Count from 1 to 9, comma separated.")],
        None,
        ChatOptions(max_tokens=8, temperature=0),
    )
    assert len([d for d in deltas if d.text]) >= 2
    usage = deltas[-1].usage
    assert usage is not None and usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 8
    text = "The quick brown fox jumps over the lazy dog."
    assert llama_server.count_tokens(text) == small_model.count_tokens(text)  # type: ignore[attr-defined]
    assert llama_server._tokenize_style == "llamacpp"


async def test_real_llamacpp_server_native_forced_tool_call(llama_server: OpenAIBackend) -> None:
    ask = [Message.user("Add 2 and 3.")]
    deltas = await collect(llama_server, ask, TOOLS, ChatOptions(tool_choice="add", max_tokens=60, temperature=0))
    calls = [c for d in deltas for c in d.tool_calls]
    assert [c.name for c in calls] == ["add"]
    assert set(calls[0].parsed_arguments()) == {"a", "b"}
    assert llama_server.native_tools is True


async def test_real_llamacpp_server_context_overflow(llama_server: OpenAIBackend) -> None:
    with pytest.raises(ContextOverflowError):
        await collect(llama_server, [Message.user("word " * 6000)], None, ChatOptions(max_tokens=4))
