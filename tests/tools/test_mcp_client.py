"""The MCP client against a real MCP server (tests/tools/mcp_test_server.py) in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lector.agent.assistant import Assistant
from lector.llm.messages import Message, ToolCall
from lector.llm.scripted import ScriptedBackend
from lector.tools.base import ToolResult
from lector.tools.mcp.client import MCPHub, tool_name
from lector.tools.mcp.config import MCPConfigError, load_mcp_config
from lector.tools.registry import ToolRegistry

SERVER = str(Path(__file__).with_name("mcp_test_server.py"))
CALL_TIMEOUT = 1.5


def stdio_server(**extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [SERVER], **extra}


async def call(registry: ToolRegistry, name: str, **args: Any) -> ToolResult:
    return await registry.execute(ToolCall(id="c1", name=name, arguments=json.dumps(args)))


@pytest.fixture(scope="module")
def hub() -> Iterator[MCPHub]:
    with MCPHub({"mcpServers": {"t": stdio_server(timeout=CALL_TIMEOUT)}}) as h:
        yield h


@pytest.fixture
def registry(hub: MCPHub) -> ToolRegistry:
    return ToolRegistry(hub.tools())


# listing and calling --------------------------------------------------------------------------------
async def test_tools_are_listed_with_prefixed_names_and_their_schemas(hub: MCPHub) -> None:
    tools = {t.name: t for t in await hub.atools()}
    assert {"t__add", "t__echo", "t__fail", "t__hang", "t__crash", "t__image", "t__read_resource"} <= set(tools)
    assert "t__weird_name_with_dots" in tools
    add = tools["t__add"]
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert "Add two integers" in add.description and "'t'" in add.description
    assert hub.errors == {}


async def test_tools_are_called_and_arguments_validated_centrally(registry: ToolRegistry) -> None:
    result = await call(registry, "t__add", a=2, b=40)
    assert (result.content, result.error) == ("42", False)
    assert (await call(registry, "t__echo", text="ab", times=3)).content == "ababab"
    assert (await call(registry, "t__weird_name_with_dots", x="abc")).content == "ABC"
    bad = await call(registry, "t__add", a="two", b=1)
    assert bad.error and "invalid arguments for t__add" in bad.content
    image = await call(registry, "t__image")
    assert not image.error and image.images[0].startswith("data:image/png;base64,")


async def test_resources_are_listed_and_readable(registry: ToolRegistry) -> None:
    reader = registry.get("t__read_resource")
    assert reader is not None
    assert "notes://readme" in reader.description and "notes://page/{number}" in reader.description
    assert "pumpernickel" in (await call(registry, "t__read_resource", uri="notes://readme")).content
    assert (await call(registry, "t__read_resource", uri="notes://page/7")).content == "This is page 7."
    missing = await call(registry, "t__read_resource", uri="notes://nothing")
    assert missing.error and "notes://nothing" in missing.content


async def test_a_tool_that_raises_gives_an_error_and_the_server_keeps_working(registry: ToolRegistry) -> None:
    result = await call(registry, "t__fail", message="boom")
    assert result.error and result.content.startswith("Error from t__fail")
    assert (await call(registry, "t__add", a=1, b=1)).content == "2"


async def test_a_tool_that_hangs_is_cut_off_by_the_timeout(registry: ToolRegistry) -> None:
    started = time.monotonic()
    result = await call(registry, "t__hang")
    elapsed = time.monotonic() - started
    assert result.error and f"did not answer within {CALL_TIMEOUT:g} s" in result.content
    assert elapsed < 15
    assert (await call(registry, "t__add", a=1, b=2)).content == "3"


def test_sessions_survive_calls_from_different_event_loops_and_threads(registry: ToolRegistry) -> None:
    assert asyncio.run(call(registry, "t__add", a=1, b=2)).content == "3"
    assert asyncio.run(call(registry, "t__add", a=2, b=2)).content == "4"
    seen: list[str] = []
    worker = threading.Thread(target=lambda: seen.append(asyncio.run(call(registry, "t__add", a=3, b=3)).content))
    worker.start()
    worker.join(30)
    assert seen == ["6"]

    async def many() -> list[str]:
        results = await asyncio.gather(*(call(registry, "t__add", a=i, b=i) for i in range(6)))
        return [r.content for r in results]

    assert asyncio.run(many()) == [str(2 * i) for i in range(6)]


def test_the_agent_keeps_working_after_a_hanging_and_a_failing_tool(hub: MCPHub) -> None:
    calls: list[Any] = [
        Message.assistant(tool_calls=[ToolCall(id="1", name="t__hang", arguments="{}")]),
        Message.assistant(tool_calls=[ToolCall(id="2", name="t__fail", arguments="{}")]),
        Message.assistant(tool_calls=[ToolCall(id="3", name="t__add", arguments='{"a": 20, "b": 22}')]),
        lambda messages, tools, options: f"The sum is {messages[-1].content}.",
    ]
    bot = Assistant(ScriptedBackend(calls), tools=["calculator", *hub.tools()], system="")
    assert bot.ask("add 20 and 22") == "The sum is 42."
    results = [m.content for m in bot.messages if m.role == "tool"]
    assert "did not answer" in results[0] and results[1].startswith("Error from t__fail") and results[2] == "42"


# a server that dies, or never starts -------------------------------------------------------------------
async def test_a_crashed_server_is_restarted_once_then_reported_clearly() -> None:
    async with MCPHub({"mcpServers": {"t": stdio_server(timeout=20)}}) as hub:
        registry = ToolRegistry([*await hub.atools()])
        first_pid = (await call(registry, "t__pid")).content

        crashed = await call(registry, "t__crash")
        assert crashed.error and "stopped during the call" in crashed.content
        assert "restarted on the next call" in crashed.content

        second_pid = (await call(registry, "t__pid")).content
        assert second_pid.isdigit() and second_pid != first_pid

        again = await call(registry, "t__crash")
        assert again.error and "will not be restarted again" in again.content
        gone = await call(registry, "t__add", a=1, b=1)
        assert gone.error and "stopped again after 1 restart(s)" in gone.content


async def test_a_server_that_died_while_idle_is_restarted_for_the_next_call() -> None:
    async with MCPHub({"mcpServers": {"t": stdio_server(timeout=20)}}) as hub:
        registry = ToolRegistry([*await hub.atools()])
        first_pid = int((await call(registry, "t__pid")).content)
        os.kill(first_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not hub._connections["t"].ended:
            await asyncio.sleep(0.05)
        result = await call(registry, "t__pid")
        assert not result.error and int(result.content) != first_pid


async def test_servers_that_never_start_are_reported_and_the_others_work() -> None:
    config = {
        "mcpServers": {
            "missing": {"command": "/nonexistent/lector-mcp-server"},
            "mute": {"command": sys.executable, "args": ["-c", "import time; time.sleep(120)"], "startup_timeout": 2},
            "broken": {"command": sys.executable, "args": ["-c", "import sys; sys.exit('no config here')"]},
            "t": stdio_server(),
        }
    }
    started = time.monotonic()
    async with MCPHub(config) as hub:
        tools = await hub.atools()
        assert time.monotonic() - started < 30
        names = {t.name for t in tools}
        assert {"missing__unavailable", "mute__unavailable", "broken__unavailable", "t__add"} <= names
        assert "command not found" in hub.errors["missing"]
        assert "did not answer within 2 s" in hub.errors["mute"]
        assert "no config here" in hub.errors["broken"]
        registry = ToolRegistry(tools)
        unavailable = await call(registry, "mute__unavailable")
        assert unavailable.error and "did not answer within 2 s" in unavailable.content
        assert (await call(registry, "t__add", a=5, b=6)).content == "11"


# streamable HTTP -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the test server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


async def test_streamable_http_server_tools_with_headers() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await asyncio.to_thread(wait_for_port, port, proc)
        config = {"mcpServers": {"web": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Test": "1"}}}}
        async with MCPHub(config, timeout=CALL_TIMEOUT) as hub:
            registry = ToolRegistry(await hub.atools())
            assert (await call(registry, "web__add", a=3, b=4)).content == "7"
            hung = await call(registry, "web__hang")
            assert hung.error and "did not answer" in hung.content
            assert "pumpernickel" in (await call(registry, "web__read_resource", uri="notes://readme")).content
    finally:
        proc.kill()
        proc.wait()


# configuration and names -------------------------------------------------------------------------------
def test_config_file_formats_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", "s3cret")
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "a": {"command": "srv", "args": ["--x", 1], "env": {"K": "${MY_TOKEN}"}, "timeout": 5},
                    "b": {"url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer ${MY_TOKEN}"}},
                    "off": {"command": "x", "disabled": True},
                }
            }
        )
    )
    a, b = load_mcp_config(path)
    assert (a.name, a.command, a.args, a.env) == ("a", "srv", ["--x", "1"], {"K": "s3cret"})
    assert (a.timeout, a.transport) == (5, "stdio")
    assert (b.transport, b.headers) == ("http", {"Authorization": "Bearer s3cret"})
    bad_servers: list[Any] = [
        {"x": {}},
        {"x": {"command": "a", "url": "b"}},
        {"x": {"command": "a", "timeout": -1}},
        {"x": {"url": "u", "type": "sse"}},
        [],
    ]
    for servers in bad_servers:
        bad = {"mcpServers": servers}
        with pytest.raises(MCPConfigError):
            load_mcp_config(bad)
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(MCPConfigError, match="not valid JSON"):
        load_mcp_config(tmp_path / "broken.json")
    with pytest.raises(MCPConfigError, match="cannot read"):
        load_mcp_config(tmp_path / "absent.json")


def test_tool_names_are_sanitised_unique_and_short() -> None:
    taken: set[str] = set()
    assert tool_name("files", "read file", taken) == "files__read_file"
    assert tool_name("files", "read.file", taken) != "files__read_file"
    long = tool_name("s" * 40, "t" * 40, taken)
    assert len(long) <= 64 and long.replace("_", "").replace("-", "").isalnum()
    assert tool_name("s" * 40, "t" * 40, taken) != long
