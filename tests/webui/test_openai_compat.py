"""The OpenAI-compatible endpoint, driven by the official `openai` client; a SCRIPTED model answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend, call
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app


@pytest.fixture()
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture()
def client(tmp_path: Path, backend: ScriptedBackend) -> Iterator[openai.OpenAI]:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=["calculator"])
    with serve_app(create_app(config, backend=backend), port) as base:
        yield openai.OpenAI(base_url=base + "/v1", api_key=TOKEN, max_retries=0)


def test_models_lists_lector(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["lector"]


def test_completion_runs_tools_on_the_server(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.replies = [Message.assistant("", [call("calculator", {"expression": "2**10"})]), "2**10 is 1024."]
    reply = client.chat.completions.create(model="lector", messages=[{"role": "user", "content": "2**10?"}])
    assert reply.choices[0].message.content == "2**10 is 1024."
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    tool_messages = [m for m in backend.requests[1]["messages"] if m.role == "tool"]
    assert tool_messages and tool_messages[0].content == "1024"


def test_streaming_completion(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.replies = ["Streaming works fine."]
    stream = client.chat.completions.create(model="lector", messages=[{"role": "user", "content": "hi"}], stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == "Streaming works fine."
    assert len([p for p in pieces if p]) > 1


def test_errors_are_clear(client: openai.OpenAI, tmp_path: Path) -> None:
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="lector", messages=[])
    bad = openai.OpenAI(base_url=str(client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_sampling_settings_reach_the_model(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.replies = ["Settled."]
    client.chat.completions.create(
        model="lector", messages=[{"role": "user", "content": "x"}], temperature=0.3, max_tokens=64, stop="END", seed=7
    )
    options = backend.requests[0]["options"]
    assert (options.temperature, options.max_tokens, options.stop, options.seed) == (0.3, 64, ["END"], 7)


def test_what_the_endpoint_cannot_honour_is_refused_in_a_sentence(client: openai.OpenAI) -> None:
    user: Any = [{"role": "user", "content": "x"}]
    weather: Any = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    wizard: Any = [{"role": "wizard", "content": "x"}]
    with pytest.raises(openai.BadRequestError, match="cannot call yours \\(tools\\).*serve-model"):
        client.chat.completions.create(model="lector", messages=user, tools=[weather])
    for bad in ({"max_tokens": -1}, {"n": 2}, {"temperature": 9}):
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(model="lector", messages=user, **bad)  # type: ignore[call-overload]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="lector", messages=wizard)
    assert "\n" not in caught.value.message and "role" in caught.value.message
