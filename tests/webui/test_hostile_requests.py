"""Hostile requests against the real server (a SCRIPTED model, not a language model, answers): tokens in URLs,
oversized chunked bodies, one busy client, invalid Unicode from the model and in stored rows, and the headers
that keep a page from reaching other origins."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message, ToolSpec
from lector.llm.scripted import ScriptedBackend, call
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LONE = "\ud800"


def reply(messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message | str:
    if messages[-1].role == "tool":
        return f"The tool said {messages[-1].content} and here is a lone surrogate: {LONE}."
    if "surrogate" in messages[-1].content and tools:
        return Message.assistant("", [call("calculator", {"expression": "1+" + LONE})])
    return "plain answer"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    config = ServerConfig(
        data_dir=tmp_path, port=free_port(), token=TOKEN, tools=["calculator"], rate_per_minute=60, rate_burst=5
    )
    config.max_upload_bytes = 100_000
    with serve_app(create_app(config, backend=ScriptedBackend(default=reply)), config.port) as base:
        yield base


def events(base: str, sid: str, content: str) -> list[dict[str, object]]:
    with httpx.stream(
        "POST", f"{base}/api/sessions/{sid}/chat", json={"content": content}, headers=AUTH, timeout=30
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    return [json.loads(line[6:]) for line in lines]


def test_the_token_in_a_url_opens_only_the_page(server: str) -> None:
    page = httpx.get(f"{server}/?token={TOKEN}")
    assert page.status_code == 200 and "lector_token=" in page.headers.get("set-cookie", "")
    for method, path in [("POST", "/api/sessions"), ("GET", "/api/sessions"), ("DELETE", "/pages/x")]:
        response = httpx.request(method, f"{server}{path}?token={TOKEN}")
        assert response.status_code == 401, (method, path)
        assert "set-cookie" not in response.headers


def test_every_response_carries_a_strict_content_security_policy(server: str) -> None:
    for path in ["/", "/static/app.js", "/api/sessions", "/nope"]:
        headers = httpx.get(server + path, headers=AUTH).headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "img-src 'self' data: blob:" in policy
        assert "style-src 'self'" in policy and "unsafe-inline" not in policy
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"


def test_a_chunked_upload_over_the_limit_is_413(server: str) -> None:
    sid = httpx.post(f"{server}/api/sessions", json={}, headers=AUTH).json()["id"]

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(50):
            yield b"x" * 10_000
        yield b"\r\n--b--\r\n"

    response = httpx.post(
        f"{server}/api/sessions/{sid}/documents",
        content=chunks(),
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413, response.text
    assert "exceeds the limit" in response.json()["error"]["message"]


def test_one_busy_session_does_not_starve_the_others(server: str) -> None:
    busy = httpx.post(f"{server}/api/sessions", json={}, headers=AUTH).json()["id"]
    codes = [httpx.get(f"{server}/api/sessions/{busy}", headers=AUTH).status_code for _ in range(8)]
    assert 429 in codes
    other = httpx.post(f"{server}/api/sessions", json={}, headers=AUTH).json()["id"]
    assert httpx.get(f"{server}/api/sessions/{other}", headers=AUTH).status_code == 200


def test_a_lone_surrogate_from_the_model_neither_breaks_the_stream_nor_the_session(server: str) -> None:
    sid = httpx.post(f"{server}/api/sessions", json={}, headers=AUTH).json()["id"]
    stream = events(server, sid, "use a surrogate")
    assert stream[-1]["type"] == "done" and any(e["type"] == "final" for e in stream)
    final = next(e for e in stream if e["type"] == "final")
    assert "\ufffd" in json.dumps(final, ensure_ascii=False)
    session = httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH)
    assert session.status_code == 200
    assert any("\ufffd" in m["content"] for m in session.json()["messages"])


def test_a_session_stored_with_an_escaped_lone_surrogate_still_opens(server: str, tmp_path: Path) -> None:
    sid = httpx.post(f"{server}/api/sessions", json={}, headers=AUTH).json()["id"]
    with sqlite3.connect(tmp_path / "lector.db") as db:
        db.execute(
            "INSERT INTO messages(session_id, role, content, tool_calls, tool_call_id, name, extra, created)"
            " VALUES (?, 'assistant', 'ok', ?, NULL, NULL, ?, 0)",
            (sid, '[{"id": "c1", "name": "calculator", "arguments": "\\ud800"}]', '{"note": "\\udfff"}'),
        )
    session = httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH)
    assert session.status_code == 200
    message = session.json()["messages"][-1]
    assert message["tool_calls"][0]["arguments"] == "\ufffd" and message["extra"]["note"] == "\ufffd"


def test_a_page_posted_with_invalid_unicode_is_kept(server: str) -> None:
    body = '{"url": "https://example.org/u", "title": "t\\ud800", "text": "caf\\udce9 text"}'
    response = httpx.post(f"{server}/pages", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code in (200, 201), response.text
    page = httpx.get(f"{server}/pages/{response.json()['id']}", headers=AUTH).json()
    assert page["title"] == "t\ufffd"


@pytest.mark.parametrize(
    "content, says",
    [
        (b'{"content":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
        (b'{"content": "\xff\xfe"}', "not valid UTF-8"),
        (b'{"content": "x", "n": 1' + b"0" * 5000 + b"}", "too many digits"),
    ],
)
def test_an_unreadable_body_gets_the_reason_in_a_sentence(server: str, content: bytes, says: str) -> None:
    sid = httpx.post(f"{server}/api/sessions", json={}, headers=AUTH, timeout=10).json()["id"]
    for path in (f"/api/sessions/{sid}/chat", "/v1/chat/completions"):
        reply = httpx.post(
            server + path, content=content, headers={**AUTH, "Content-Type": "application/json"}, timeout=10
        )
        assert reply.status_code == 400 and says in reply.json()["error"]["message"], reply.text


def test_an_unknown_route_is_a_sentence_not_framework_json(server: str) -> None:
    reply = httpx.get(f"{server}/api/nothing", headers=AUTH, timeout=10)
    assert reply.status_code == 404 and reply.json() == {
        "error": {"status": 404, "message": "no such route on this server"}
    }
