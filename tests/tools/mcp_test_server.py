"""A real MCP server for the client tests, written with the SDK; run as `python mcp_test_server.py [--http PORT]`.

Tools: add, echo, fail (raises), hang (sleeps far past any timeout), crash (ends the process mid-call),
pid (the process id, to see restarts), image (a tiny PNG). A text resource and a resource template.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c6360000002000105a0be9a0000000049454e44ae426082"
    )
).decode()

server: MCPServer[Any] = MCPServer("lector-test", log_level="CRITICAL")  # no slow traceback rendering


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str, times: int = 1) -> str:
    """Echo the text back, `times` times."""
    return text * times


@server.tool()
def fail(message: str = "boom") -> str:
    """Always raises an error."""
    raise RuntimeError(message)


@server.tool()
async def hang(seconds: float = 3600) -> str:
    """Sleeps (for an hour by default)."""
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool()
def crash() -> str:
    """Ends the server process in the middle of the call."""
    sys.stderr.flush()
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def image() -> ImageContent:
    """A 1x1 PNG image."""
    return ImageContent(type="image", data=PNG_1PX, mime_type="image/png")


@server.tool(name="weird name/with.dots")
def weird(x: str) -> str:
    """A tool whose name needs sanitising."""
    return x.upper()


@server.resource("notes://readme", name="readme", description="A short note", mime_type="text/plain")
def readme() -> str:
    return "The secret word is pumpernickel."


@server.resource("notes://page/{number}", name="page", description="A numbered page")
def page(number: str) -> str:
    return f"This is page {number}."


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
