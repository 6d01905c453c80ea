"""The server over real HTTP on loopback, with a SCRIPTED model (not a language model) for the answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend, call
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


@pytest.fixture()
def backend() -> ScriptedBackend:
    return ScriptedBackend(default="Hello from the scripted model.")


@pytest.fixture()
def server(tmp_path: Path, backend: ScriptedBackend) -> Iterator[str]:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=["calculator"], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base:
        yield base


def test_health_needs_no_token(server: str) -> None:
    assert httpx.get(server + "/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers, status, fragment",
    [
        ({}, 401, "missing access token"),
        ({"Authorization": "Bearer wrong"}, 401, "invalid access token"),
        ({**AUTH, "Host": "evil.example"}, 421, "Host header"),
    ],
)
def test_requests_without_valid_token_or_host_are_refused(
    server: str, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = httpx.get(server + "/api/sessions", headers=headers)
    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]


def test_malformed_and_oversized_requests_get_precise_errors(server: str) -> None:
    json_headers = {**AUTH, "Content-Type": "application/json"}
    bad_json = httpx.post(server + "/api/sessions", content=b"{nope", headers=json_headers)
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    wrong_type = httpx.post(server + "/api/sessions", json={"title": 5}, headers=AUTH)
    assert wrong_type.status_code == 422 and "title" in wrong_type.json()["error"]["message"]
    huge = httpx.post(server + "/api/sessions", content=b"x" * 2_000_000, headers=AUTH)
    assert huge.status_code == 413 and "exceeds the limit" in huge.json()["error"]["message"]
    missing = httpx.get(server + "/api/sessions/doesnotexist", headers=AUTH)
    assert missing.status_code == 404 and "no session" in missing.json()["error"]["message"]
    empty_chat = httpx.post(server + "/api/sessions", json={}, headers=AUTH).json()
    empty = httpx.post(f"{server}/api/sessions/{empty_chat['id']}/chat", json={"content": ""}, headers=AUTH)
    assert empty.status_code == 422


def test_rate_limit_answers_429(tmp_path: Path, backend: ScriptedBackend) -> None:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_per_minute=60, rate_burst=3)
    with serve_app(create_app(config, backend=backend), port) as base:
        codes = [httpx.get(base + "/api/sessions", headers=AUTH).status_code for _ in range(6)]
        assert codes[:3] == [200, 200, 200]
        limited = httpx.get(base + "/api/sessions", headers=AUTH)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_chat_streams_events_and_persists(server: str, backend: ScriptedBackend) -> None:
    backend.replies = [Message.assistant("", [call("calculator", {"expression": "6*7"})]), "It is 42."]
    session = httpx.post(server + "/api/sessions", json={"title": "t"}, headers=AUTH).json()
    with httpx.stream(
        "POST", f"{server}/api/sessions/{session['id']}/chat", json={"content": "6*7?"}, headers=AUTH, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "ack" and kinds[-1] == "done"
    assert "tool_call_started" in kinds and "tool_call_finished" in kinds and "final" in kinds
    finished = next(e for e in events if e["type"] == "tool_call_finished")
    assert finished["content"] == "42" and not finished["error"]
    assert "".join(e["text"] for e in events if e["type"] == "text") == "It is 42."
    stored = httpx.get(f"{server}/api/sessions/{session['id']}", headers=AUTH).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[-1]["content"] == "It is 42." and stored[-1]["extra"]["usage"]["completion_tokens"] > 0


def test_a_running_answer_can_be_stopped(server: str, backend: ScriptedBackend) -> None:
    backend.replies = ["slow " * 500]
    backend.delay = 0.02
    session = httpx.post(server + "/api/sessions", json={}, headers=AUTH).json()
    url = f"{server}/api/sessions/{session['id']}"
    events = []
    with httpx.stream("POST", url + "/chat", json={"content": "talk"}, headers=AUTH, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "text" and len(events) == 5:
                    assert httpx.post(url + "/stop", headers=AUTH).json() == {"stopped": True}
    final = next(e for e in events if e["type"] == "final")
    assert final["stopped_reason"] == "cancelled"
    assert len(final["message"]["content"]) < len("slow " * 500)


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[])
    with serve_app(create_app(config, backend=ScriptedBackend(default="first answer")), port) as base:
        sid = httpx.post(base + "/api/sessions", json={"title": "keep"}, headers=AUTH).json()["id"]
        with httpx.stream("POST", f"{base}/api/sessions/{sid}/chat", json={"content": "q"}, headers=AUTH) as r:
            sse_events(r)
    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[])
    with serve_app(create_app(config, backend=ScriptedBackend(default="x")), port) as base:
        session = httpx.get(f"{base}/api/sessions/{sid}", headers=AUTH).json()
        assert session["title"] == "keep"
        assert [m["content"] for m in session["messages"]] == ["q", "first answer"]


def test_openapi_documents_the_extension_api(server: str) -> None:
    schema = httpx.get(server + "/openapi.json", headers=AUTH).json()
    for path in ("/pages", "/pages/{pid}", "/pages/ask", "/v1/chat/completions", "/api/sessions/{sid}/chat"):
        assert path in schema["paths"], path


def test_token_is_generated_and_kept(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path)
    token = config.resolved_token()
    assert len(token) >= 32
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert ServerConfig(data_dir=tmp_path).resolved_token() == token


def test_binding_beyond_loopback_needs_an_explicit_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LECTOR_TOKEN", raising=False)
    with pytest.raises(SystemExit, match="explicit access token"):
        ServerConfig(host="0.0.0.0", data_dir=tmp_path).check_binding()
    ServerConfig(host="0.0.0.0", data_dir=tmp_path, token="chosen-token").check_binding()
    ServerConfig(host="127.0.0.1", data_dir=tmp_path).check_binding()
