"""`lector mcp` through the SDK's own client: stdio (a subprocess) and streamable HTTP (behind the token)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from lector.cli import main as lector_main
from lector.webui.config import ServerConfig
from lector.webui.mcp_server import build_mcp_server, http_app

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "mcp-test-token-0123456789"
DOCUMENT = """The Lighthouse of Varn

Chapter 1. The keeper of the lighthouse of Varn was named Odile Marchetti. She kept the lamp burning
for forty-two winters and wrote every passing ship into a green logbook.

Chapter 2. Ships that passed the cape paid a toll of three silver coins, which the harbour master
collected every spring. The toll paid for oil for the lamp.
"""
QUESTION = "Who was the keeper of the lighthouse of Varn?"


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "varn.txt"
    path.write_text(DOCUMENT, encoding="utf-8")
    return path


def text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content or json.loads(text(result))
    return dict(data)


async def index_search_ask(client: Client, document: Path) -> dict[str, Any]:
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"index", "search", "ask", "documents"} <= names

    empty = await client.call_tool("search", {"query": "keeper"})
    assert empty.is_error and "index" in text(empty)

    indexed = payload(await client.call_tool("index", {"paths": [str(document), str(document.parent / "nope.pdf")]}))
    assert [d["source"] for d in indexed["documents"]] == [str(document)]
    assert "nope.pdf" in next(iter(indexed["errors"]))
    doc_id = indexed["documents"][0]["doc_id"]

    hits = payload(await client.call_tool("search", {"query": "keeper of the lighthouse", "k": 3}))["hits"]
    assert hits and hits[0]["doc_id"] == doc_id and "Odile Marchetti" in hits[0]["text"]
    assert {"rank", "score", "source", "chunk_id", "start", "end", "page", "text"} <= set(hits[0])

    bad_level = await client.call_tool("ask", {"question": QUESTION, "level": "9"})
    assert bad_level.is_error and "unknown level" in text(bad_level)

    answer = payload(await client.call_tool("ask", {"question": QUESTION, "level": "auto"}))
    assert set(answer) >= {"answer", "level", "citations", "usage", "elapsed_s"}
    assert answer["answer"].strip() and answer["usage"]["llm_calls"] >= 1
    assert answer["citations"], answer
    cited = answer["citations"][0]
    assert cited["source"] == str(document)
    assert DOCUMENT.replace("\r", "")[cited["start"] : cited["end"]] == cited["text"]
    assert "Odile" in answer["answer"] or any("Odile" in c["text"] for c in answer["citations"])
    return answer


async def test_stdio_server_with_the_sdk_client_and_the_real_small_model(document: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("LECTOR_", "HOME", "PATH", "XDG_"))}
    env["LECTOR_MODEL"] = "qwen2.5-coder-0.5b"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "lector", "mcp", "--cache-dir", str(tmp_path / "cache")],
        env=env,
        cwd=str(ROOT),
    )
    with open(tmp_path / "stderr.log", "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await index_search_ask(client, document)


# streamable HTTP ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the MCP HTTP server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def http_server(tmp_path: Path, small_model: Any) -> Iterator[str]:
    port = free_port()
    config = ServerConfig(host="127.0.0.1", port=port, token=TOKEN, data_dir=tmp_path / "data")
    server = build_mcp_server(cache_dir=tmp_path / "cache", backend=small_model)
    with serve(http_app(server, config), port) as url:
        yield url


async def test_http_server_with_the_sdk_client_and_the_token(http_server: str, document: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http:
        async with Client(streamable_http_client(http_server, http_client=http)) as client:
            await index_search_ask(client, document)


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_http_server_refuses_a_missing_or_wrong_token(http_server: str, auth: str | None) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    if auth:
        headers["Authorization"] = auth
    response = httpx.post(http_server, json=request, headers=headers, timeout=10)
    assert response.status_code == 401
    assert "token" in response.json()["error"]["message"]


def test_http_server_refuses_a_foreign_host_header(http_server: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Host": "evil.example:80"}
    assert httpx.post(http_server, json={}, headers=headers, timeout=10).status_code == 421


async def test_the_sdk_client_with_a_wrong_token_fails_to_connect(http_server: str) -> None:
    failure: BaseException | None = None
    started = time.monotonic()
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer nope"}, timeout=10) as http:
        try:
            with anyio.fail_after(30):
                async with Client(streamable_http_client(http_server, http_client=http)) as client:
                    await client.list_tools()
        except BaseException as exc:  # the SDK wraps the 401 in its own error types
            failure = exc
    assert failure is not None and not isinstance(failure, TimeoutError)
    assert time.monotonic() - started < 30


async def test_lector_mcp_http_command(tmp_path: Path, document: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "lector",
        "mcp",
        "--http",
        "--port",
        str(port),
        "--token",
        TOKEN,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "lector mcp --http did not start"
                await anyio.sleep(0.2)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                indexed = payload(await client.call_tool("index", {"paths": [str(document)]}))
                assert indexed["documents"][0]["source"] == str(document)
                hits = payload(await client.call_tool("search", {"query": "silver coins toll", "k": 1}))["hits"]
                assert "three silver coins" in hits[0]["text"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/mcp" in err.decode()


def test_http_beyond_loopback_needs_an_explicit_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LECTOR_TOKEN", raising=False)
    with pytest.raises(SystemExit, match="explicit access token"):
        lector_main(["mcp", "--http", "--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path)])


# MCP servers' tools in `lector chat` and `lector serve` ------------------------------------------------------
TEST_SERVER = ROOT / "tests" / "tools" / "mcp_test_server.py"


@pytest.fixture
def mcp_config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    servers = {
        "t": {"command": sys.executable, "args": [str(TEST_SERVER)], "timeout": 20},
        "bad": {"command": "/nonexistent/mcp-server"},
    }
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def test_lector_chat_uses_mcp_tools(
    mcp_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SCRIPTED model: the model calls an MCP tool; the broken server is reported on stderr."""
    from lector.llm import factory
    from lector.llm.messages import Message
    from lector.llm.scripted import ScriptedBackend, call

    replies: list[Any] = [Message.assistant("", [call("t__add", {"a": 20, "b": 22})]), "It is 42."]
    monkeypatch.setattr(factory, "make_backend", lambda spec=None, **kw: ScriptedBackend(replies))
    code = lector_main(["chat", "--tools", "none", "--mcp-config", str(mcp_config), "-q", "20+22?"])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == "It is 42."
    assert "→ t__add" in err and "← 42" in err
    assert "MCP server 'bad' failed to start: command not found" in err


def test_lector_chat_rejects_a_bad_mcp_config(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"mcpServers": {"x": {}}}')
    with pytest.raises(SystemExit, match="lector chat: MCP server 'x'"):
        lector_main(["chat", "--mcp-config", str(tmp_path / "bad.json"), "-q", "hi"])


async def test_lector_serve_registers_mcp_tools(mcp_config: Path, tmp_path: Path) -> None:
    from lector.llm.messages import ToolCall
    from lector.llm.scripted import ScriptedBackend
    from lector.webui.state import AppState

    config = ServerConfig(data_dir=tmp_path / "data", token=TOKEN, tools=["calculator"], mcp_config=mcp_config)
    state = await anyio.to_thread.run_sync(lambda: AppState(config, backend=ScriptedBackend([])))
    try:
        assert {"calculator", "t__add", "t__read_resource", "bad__unavailable"} <= set(state.registry.names())
        result = await state.registry.execute(ToolCall(id="1", name="t__add", arguments='{"a": 1, "b": 2}'))
        assert result.content == "3"
    finally:
        await anyio.to_thread.run_sync(state.close)
