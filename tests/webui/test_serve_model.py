"""`lector serve-model`: the OpenAI-compatible API over a raw backend.

Protocol tests use a SCRIPTED model (llm.scripted.ScriptedBackend, not a language model). The tests marked
"real model" use the embedded Qwen2.5-Coder-0.5B from the `small_model` fixture.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from lector.cli import build_parser
from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.errors import ContextOverflowError
from lector.llm.messages import Message, ToolSpec
from lector.llm.openai_http import OpenAIBackend
from lector.llm.scripted import ScriptedBackend, call
from lector.webui.config import ServerConfig
from lector.webui.model_server import create_model_app
from tests.webui.live_server import TOKEN, free_port, serve_app

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def serve(backend: Backend, **kw: Any) -> Any:
    port = free_port()
    config = ServerConfig(port=port, token=TOKEN)
    app = create_model_app(backend, token=TOKEN, allowed_hosts=config.host_allowlist(), **kw)
    return serve_app(app, port)


@pytest.fixture()
def scripted() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture()
def base(scripted: ScriptedBackend) -> Iterator[str]:
    with serve(scripted, record_prompts=True) as url:
        yield url


def client_for(base: str) -> Any:
    return openai.OpenAI(base_url=base + "/v1", api_key=TOKEN, max_retries=0)


def post(base: str, body: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(base + "/v1/chat/completions", json=body, headers=headers, timeout=30)


USER = [{"role": "user", "content": "hi"}]


# ------------------------------------------------------------------ protocol (SCRIPTED model)


def test_models_and_unknown_model(base: str) -> None:
    client = client_for(base)
    assert [m.id for m in client.models.list()] == ["scripted"]
    reply = post(base, {"model": "gpt-9", "messages": USER})
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "model_not_found"


def test_completion_not_streamed(base: str, scripted: ScriptedBackend) -> None:
    scripted.replies = ["Hello there."]
    reply = client_for(base).chat.completions.create(model="scripted", messages=USER, temperature=0.0, max_tokens=9)
    assert reply.choices[0].message.content == "Hello there."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    options: ChatOptions = scripted.requests[0]["options"]
    assert options.temperature == 0.0 and options.max_tokens == 9


def test_completion_streamed_with_usage(base: str, scripted: ScriptedBackend) -> None:
    scripted.replies = ["Streaming works fine here."]
    stream = client_for(base).chat.completions.create(
        model="default", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streaming works fine here."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_native_tool_call_comes_back_as_tool_calls(base: str, scripted: ScriptedBackend) -> None:
    scripted.replies = [Message.assistant("", [call("get_weather", {"city": "Oslo"})])]
    reply = client_for(base).chat.completions.create(model="scripted", messages=USER, tools=[WEATHER])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Oslo"}
    seen: list[ToolSpec] = scripted.requests[0]["tools"]
    assert [t.name for t in seen] == ["get_weather"]


def test_streamed_tool_call_deltas(base: str, scripted: ScriptedBackend) -> None:
    both = [call("get_weather", {"city": "Oslo"}), call("get_weather", {"city": "Rome"})]
    scripted.replies = [Message.assistant("", both)]
    stream = client_for(base).chat.completions.create(
        model="scripted", messages=USER, tools=[WEATHER], tool_choice="required", stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for frag in choice.delta.tool_calls or []:
                entry = calls.setdefault(frag.index, {"name": "", "arguments": "", "id": ""})
                entry["id"] += frag.id or ""
                entry["name"] += (frag.function.name if frag.function else None) or ""
                entry["arguments"] += (frag.function.arguments if frag.function else None) or ""
    assert finish == "tool_calls"
    assert [json.loads(calls[i]["arguments"])["city"] for i in sorted(calls)] == ["Oslo", "Rome"]
    assert all(c["id"].startswith("call_") and c["name"] == "get_weather" for c in calls.values())
    assert scripted.requests[0]["options"].tool_choice == "required"


def test_tool_history_round_trips(base: str, scripted: ScriptedBackend) -> None:
    scripted.replies = ["It is sunny in Oslo."]
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = post(base, {"model": "scripted", "messages": messages, "tools": [WEATHER]})
    assert reply.status_code == 200, reply.text
    seen: list[Message] = scripted.requests[0]["messages"]
    assert seen[1].tool_calls[0].name == "get_weather" and seen[2].role == "tool"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages[0]"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        ({"messages": USER, "tools": [{"type": "function"}]}, "tools"),
        (
            {"messages": USER, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"messages": USER, "n": 3}, "n"),
    ],
)
def test_bad_requests_are_400(base: str, body: dict[str, Any], param: str) -> None:
    reply = post(base, {"model": "scripted", **body})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def test_invalid_json_is_400(base: str) -> None:
    reply = httpx.post(
        base + "/v1/chat/completions",
        content=b"{nope",
        timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert reply.status_code == 400


def test_auth_is_required(base: str) -> None:
    assert post(base, {"messages": USER}, token=None).status_code == 401
    assert post(base, {"messages": USER}, token="wrong").status_code == 401
    assert httpx.get(base + "/v1/models", timeout=10).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
    foreign = httpx.get(base + "/v1/models", headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"})
    assert foreign.status_code == 421
    assert httpx.get(base + "/health", timeout=10).status_code == 200


def test_binding_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LECTOR_TOKEN", raising=False)
    args = build_parser().parse_args(["serve-model", "--host", "0.0.0.0", "--model", "qwen2.5-coder-0.5b"])
    with pytest.raises(SystemExit, match="explicit access token"):
        args.func(args)


class OverflowBackend(Backend):
    name = "overflow"

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        raise ContextOverflowError("the prompt does not fit the model's context: 9000 tokens for 8192")
        yield Delta()  # pragma: no cover - makes this an async generator


@pytest.mark.parametrize("stream", [False, True])
def test_context_overflow_is_400(stream: bool) -> None:
    with serve(OverflowBackend()) as url:
        reply = post(url, {"model": "overflow", "messages": USER, "stream": stream})
        assert reply.status_code == 400
        assert reply.json()["error"]["code"] == "context_length_exceeded"
        with pytest.raises(openai.BadRequestError) as caught:
            client_for(url).chat.completions.create(model="overflow", messages=USER, stream=stream)
        assert caught.value.code == "context_length_exceeded"
        with pytest.raises(ContextOverflowError):
            OpenAIBackend(url, api_key=TOKEN, max_retries=0).chat([Message.user("hi")])


class MeetingBackend(Backend):
    """Answers only once `expected` requests are inside at the same time: a serialising server deadlocks it."""

    name = "meeting"

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.inside = 0
        self.most = 0
        self.all_in: asyncio.Event | None = None

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        if self.all_in is None:
            self.all_in = asyncio.Event()
        self.inside += 1
        self.most = max(self.most, self.inside)
        if self.inside >= self.expected:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), 10)
        except TimeoutError:
            yield Delta(text="alone", usage=Usage(), finish_reason="stop")
            return
        finally:
            self.inside -= 1
        yield Delta(text="together", usage=Usage(prompt_tokens=3, completion_tokens=1), finish_reason="stop")


def test_requests_are_not_serialised() -> None:
    backend = MeetingBackend(expected=3)
    with serve(backend) as url:
        results: list[str] = []

        def ask(stream: bool) -> None:
            results.append(post(url, {"model": "meeting", "messages": USER, "stream": stream}).text)

        threads = [threading.Thread(target=ask, args=(i == 1,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 3 and all("together" in r for r in results), results
        usage = httpx.get(url + "/v1/usage", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert usage["requests"] == 3 and usage["prompt_tokens"] == 9 and usage["in_flight"] == 0


def test_usage_log_and_tokenize(base: str, scripted: ScriptedBackend) -> None:
    scripted.replies = ["one", "two"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    post(base, {"messages": [{"role": "user", "content": "first needle"}]})
    mark = httpx.get(base + "/v1/usage", headers=auth).json()["last_seq"]
    post(base, {"messages": [{"role": "user", "content": "second needle"}], "stream": True})
    report = httpx.get(base + "/v1/usage", params={"since": mark}, headers=auth).json()
    assert report["requests"] == 2 and len(report["records"]) == 1
    record = report["records"][0]
    assert record["stream"] is True and "second needle" in record["prompt"] and record["completion_tokens"] > 0
    tokens = httpx.post(base + "/tokenize", json={"content": "abcdefgh"}, headers=auth).json()
    assert tokens["count"] == 2


def test_our_openai_backend_uses_native_tools(base: str, scripted: ScriptedBackend) -> None:
    scripted.replies = [Message.assistant("", [call("get_weather", {"city": "Oslo"})])]
    client = OpenAIBackend(base, api_key=TOKEN, max_retries=0)
    spec = ToolSpec(**WEATHER["function"])
    result = client.chat([Message.user("Weather in Oslo?")], [spec])
    assert client.native_tools is True and client._native_mode is None
    assert result.finish_reason == "tool_calls"
    assert result.message.tool_calls[0].name == "get_weather"
    assert client.count_tokens("abcdefgh") == 2  # the server's /tokenize, not the character estimate
    assert client.context_size == scripted.context_size


# ------------------------------------------------------------------ the REAL 0.5B model


@pytest.fixture(scope="module")
def real_base(small_model: Any) -> Iterator[str]:
    with serve(small_model) as url:
        yield url


def test_real_model_streamed_and_not(real_base: str) -> None:
    client = client_for(real_base)
    question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    reply = client.chat.completions.create(model="qwen2.5-coder-0.5b", messages=question, max_tokens=8, temperature=0)
    assert "paris" in (reply.choices[0].message.content or "").lower()
    assert reply.usage is not None and reply.usage.prompt_tokens > 10
    stream = client.chat.completions.create(
        model="qwen2.5-coder-0.5b", messages=question, max_tokens=8, temperature=0, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "paris" in text.lower()


def test_real_model_native_tool_call(real_base: str) -> None:
    client = client_for(real_base)
    reply = client.chat.completions.create(
        model="qwen2.5-coder-0.5b",
        messages=[{"role": "user", "content": "What is the weather in Oslo right now?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"
    assert "oslo" in json.loads(choice.message.tool_calls[0].function.arguments)["city"].lower()


def test_real_model_through_our_openai_backend(real_base: str) -> None:
    backend = OpenAIBackend(real_base, api_key=TOKEN, max_retries=0)
    spec = ToolSpec(**WEATHER["function"])
    options = ChatOptions(tool_choice="required", max_tokens=64, temperature=0)
    result = backend.chat([Message.user("Is it raining in Rome?")], [spec], options)
    assert result.finish_reason == "tool_calls" and result.message.tool_calls[0].name == "get_weather"
    assert result.usage.prompt_tokens > 0
    assert backend.count_tokens("hello world") == 2


def test_real_model_two_concurrent_requests(real_base: str) -> None:
    client = client_for(real_base)
    answers: dict[int, str] = {}

    def ask(i: int) -> None:
        reply = client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": f"Count from {i} to {i + 3}."}],
            max_tokens=16,
            temperature=0,
        )
        answers[i] = reply.choices[0].message.content or ""

    threads = [threading.Thread(target=ask, args=(i,)) for i in (1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(answers) == {1, 5} and all(answers.values())


def test_cli_registers_serve_model() -> None:
    args = build_parser().parse_args(["serve-model", "--port", "8123", "--parallel", "2"])
    assert isinstance(args, argparse.Namespace) and args.port == 8123 and args.parallel == 2


@pytest.mark.parametrize(
    "content, says",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"messages": "\xff\xfe"}', "not valid UTF-8"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "too many digits"),
    ],
)
def test_an_unreadable_body_is_400_with_the_reason(base: str, content: bytes, says: str) -> None:
    reply = httpx.post(
        base + "/v1/chat/completions",
        content=content,
        timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert reply.status_code == 400 and says in reply.json()["error"]["message"], reply.text


def test_an_unknown_route_is_an_openai_style_404(base: str) -> None:
    reply = httpx.get(base + "/v1/nothing", timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 404 and reply.json()["error"]["message"] == "no such route on this server"
