"""Hostile input against every tool, as one table: input -> the outcome expected, within a generous time budget.

Every case runs through the registry (the boundary the model talks to) while another coroutine ticks on
the same event loop, and asserts: the expected message, the time budget (the point is no hang, not a
tight timing), no stall of the loop, and valid Unicode in what comes back. CPU bombs also assert that
nothing is still computing in this process afterwards.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from lector.llm.messages import ToolCall
from lector.tools.base import ToolContext, ToolResult, tool
from lector.tools.calculator import calculator
from lector.tools.code import sandbox
from lector.tools.code.sandbox import Limits
from lector.tools.code.tool import CodeInterpreter
from lector.tools.registry import ToolRegistry
from lector.tools.web.fetch import WebFetch
from tests.tools.loop_watch import burnt_while_idle, longest_gap

LONE = "\ud800"
HEAVY_TABLE = ("<html><body><table>" + "<tr><td>a</td><td>b</td></tr>" * 60_000 + "</table></body></html>").encode()
SANDBOX = [pytest.mark.sandbox, pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not installed")]


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def body(self, data: bytes, ctype: str, encoding: str = "") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def drip(self, head: bytes, piece: bytes, count: int) -> None:
        try:
            self.wfile.write(head)
            for _ in range(count):
                self.wfile.write(piece)
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            return

    def do_GET(self) -> None:
        routes: dict[str, Callable[[], None]] = {
            "/drip-body": lambda: self.drip(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"x", 100),
            "/drip-headers": lambda: self.drip(b"HTTP/1.1 200 OK\r\n", b"X-Slow: y\r\n", 100),
            "/huge-header": lambda: self.drip(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", b"", 0),
            "/deflate-bomb": lambda: self.body(zlib.compress(b"\0" * (64 << 20), 9), "text/plain", "deflate"),
            "/raw-deflate-bomb": lambda: self.body(_raw_deflate(b"\0" * (64 << 20)), "text/plain", "deflate"),
            "/gzip-in-gzip": lambda: self.body(b"\x1f\x8b" + b"\0" * 64, "text/plain", "gzip, gzip"),
            "/heavy.html": lambda: self.body(HEAVY_TABLE, "text/html"),
            "/surrogates.json": lambda: self.body(b'{"a": "\\ud800 and \\udfff"}', "application/json"),
        }
        routes.get(self.path, lambda: self.body(b"not found", "text/plain"))()


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


@tool
def echo_lone_surrogate(text: str) -> str:
    """A careless plugin: its output holds a lone surrogate."""
    return f"got {text} and {LONE}"


@tool
def raise_lone_surrogate() -> str:
    """A careless plugin: its exception message holds a lone surrogate."""
    raise RuntimeError(f"bad {LONE} state")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    srv.daemon_threads = True
    Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def fetch_tool(server: str, tmp_path_factory: pytest.TempPathFactory) -> WebFetch:
    return WebFetch(
        allow_hosts={server}, policy="off", timeout=2.0, read_seconds=1.0,
        download_dir=tmp_path_factory.mktemp("downloads"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def interpreter() -> Iterator[CodeInterpreter]:
    sandbox.setup_env()
    interpreter = CodeInterpreter(limits=Limits(timeout=3.0))
    yield interpreter
    interpreter.close()


@dataclass
class Case:
    tool: str
    arguments: dict[str, Any]
    expect: list[str]
    """Substrings of the result's content; "{host}" stands for the test server."""
    seconds: float
    error: bool = True
    cpu_bomb: bool = False
    """Also check that nothing keeps computing in this process afterwards."""
    then: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    """Follow-up calls in the same conversation, made 3 s later, and what they must show."""


def url(path: str) -> dict[str, Any]:
    return {"url": "http://{host}" + path}


BACKGROUND_WRITER = (
    "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
    "        time.sleep(1)\n        open('escaped.txt', 'w').write('x')\n    os._exit(0)\nkept = 1"
)
SLEEPING = (
    "import os\n"
    "any(b'sleep\\x00100' in open(f'/proc/{q}/cmdline', 'rb').read() for q in os.listdir('/proc') if q.isdigit())"
)
CASES: dict[str, Case] = {
    # CPU bombs: the calculator
    "calculator: modular pow of 3900 digits": Case(
        "calculator", {"expression": "pow(3, 10**3900, 10**3900+1)"}, ["pow() with a modulus", "limit"], 1.0,
        cpu_bomb=True,
    ),
    "calculator: 20 such terms in 539 characters": Case(
        "calculator", {"expression": "+".join(["pow(3,10**3900,10**3900+1)"] * 20)}, ["pow() with a modulus"], 1.0,
        cpu_bomb=True,
    ),
    "calculator: cheap terms, costly together": Case(
        "calculator", {"expression": " + ".join(["pow(3, 2**1024, 2**1024 + 1)"] * 20)}, ["in all", "limit"], 1.0,
        cpu_bomb=True,
    ),
    "calculator: power tower": Case("calculator", {"expression": "10**10**6"}, ["digits"], 1.0),
    "calculator: factorial of a million": Case("calculator", {"expression": "factorial(10**6)"}, ["digits"], 1.0),
    # CPU bombs: the code interpreter
    "code: busy loop": Case("code_interpreter", {"code": "while True: pass"}, ["interrupted"], 12.0, cpu_bomb=True),
    "code: fork bomb": Case("code_interpreter", {"code": "import os\nwhile True: os.fork()"}, ["Error"], 12.0),
    # CPU bombs and slow servers: web fetch
    "web: slow-drip body": Case("web_fetch", url("/drip-body"), ["timed out after 2 s"], 5.0),
    "web: slow-drip headers": Case("web_fetch", url("/drip-headers"), ["timed out after 2 s"], 5.0),
    "web: one 1 MB header line": Case("web_fetch", url("/huge-header"), ["Could not fetch"], 5.0),
    "web: deflate bomb": Case("web_fetch", url("/deflate-bomb"), ["larger than 2 MB (stopped reading)"], 5.0),
    "web: raw deflate bomb": Case("web_fetch", url("/raw-deflate-bomb"), ["larger than 2 MB (stopped reading)"], 5.0),
    "web: gzip in gzip": Case("web_fetch", url("/gzip-in-gzip"), ["unsupported content encoding"], 5.0),
    "web: HTML too heavy to read": Case(
        "web_fetch", url("/heavy.html"), ["took longer than 1 s, so it was stopped"], 6.0, cpu_bomb=True
    ),
    # process escape at the end of a cell
    "code: setsid daemon writes a file later": Case(
        "code_interpreter", {"code": BACKGROUND_WRITER}, ["were killed"], 8.0, error=False,
        then=[({"code": "import os\n(kept, os.path.exists('escaped.txt'))"}, ["Out: (1, False)"])],
    ),
    "code: Popen in a new session": Case(
        "code_interpreter",
        {"code": "import subprocess\np = subprocess.Popen(['sleep', '100'], start_new_session=True)"},
        ["were killed"], 8.0, error=False,
        then=[({"code": SLEEPING}, ["Out: False"])],
    ),
    # invalid Unicode in arguments and in output
    "calculator: lone surrogate as the expression": Case(
        "calculator", {"expression": LONE}, ["invalid character", "\ufffd"], 2.0
    ),
    "calculator: lone surrogate in an unknown argument": Case(
        "calculator", {"expression": "1", "x" + LONE: 2}, ["Additional properties", "\ufffd"], 2.0
    ),
    "code: lone surrogate printed": Case(
        "code_interpreter", {"code": "print('a' + chr(0xD800) + 'b')"}, ["a\ufffdb"], 8.0, error=False
    ),
    "code: lone surrogate in the code": Case(
        "code_interpreter", {"code": f"s = '{LONE}'\nlen(s), s == chr(0xFFFD)"}, ["Out: (1, True)"], 8.0, error=False
    ),
    "web: JSON escapes of lone surrogates": Case(
        "web_fetch", url("/surrogates.json"), ['"\ufffd and \ufffd"'], 5.0, error=False
    ),
    "web: lone surrogate in the URL": Case(
        "web_fetch", {"url": "http://{host}/" + LONE}, ["Source: http://{host}/%EF%BF%BD"], 5.0, error=False
    ),
    "plugin: lone surrogate in the output": Case(
        "echo_lone_surrogate", {"text": LONE}, ["got \ufffd and \ufffd"], 2.0, error=False
    ),
    "plugin: lone surrogate in an exception": Case(
        "raise_lone_surrogate", {}, ["RuntimeError: bad \ufffd state"], 2.0
    ),
}  # fmt: skip


def _fill(value: Any, host: str) -> Any:
    if isinstance(value, str):
        return value.replace("{host}", host)
    if isinstance(value, dict):
        return {_fill(k, host): _fill(v, host) for k, v in value.items()}
    return value


async def _call(registry: ToolRegistry, name: str, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    return await registry.execute(ToolCall(name=name, arguments=json.dumps(arguments)), ctx)


def _check(result: ToolResult, expect: list[str]) -> None:
    result.content.encode("utf-8")  # raises on a lone surrogate
    for part in expect:
        assert part in result.content, result.content


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=name, marks=SANDBOX if case.tool == "code_interpreter" else [])
        for name, case in CASES.items()
    ],
)
async def test_attack(request: pytest.FixtureRequest, fetch_tool: WebFetch, server: str, case: Case) -> None:
    tools: list[Any] = [calculator, fetch_tool, echo_lone_surrogate, raise_lone_surrogate]
    if case.tool == "code_interpreter":
        tools.append(request.getfixturevalue("interpreter"))
    registry = ToolRegistry(tools)
    ctx = ToolContext(conversation_id=f"attack-{time.monotonic_ns()}")
    started = time.monotonic()
    result, gap = await longest_gap(_call(registry, case.tool, _fill(case.arguments, server), ctx))
    elapsed = time.monotonic() - started
    assert elapsed < case.seconds, f"took {elapsed:.1f} s: {result.content[:300]}"
    assert gap < 0.5, f"the event loop stalled for {gap:.2f} s"
    assert result.error == case.error, result.content
    _check(result, [_fill(part, server) for part in case.expect])
    if case.cpu_bomb:
        assert burnt_while_idle() < 0.25, "something is still computing in this process"
    if case.then:
        time.sleep(3)
    for arguments, expect in case.then:
        _check(await _call(registry, case.tool, arguments, ctx), expect)
    if case.tool == "code_interpreter":  # the session still works
        assert "Out: 2" in (await _call(registry, case.tool, {"code": "1 + 1"}, ctx)).content


def test_the_table_covers_every_class() -> None:
    assert len(CASES) >= 12
    tools = {case.tool for case in CASES.values()}
    assert {"calculator", "code_interpreter", "web_fetch"} <= tools
