"""The `--mcp-config FILE` option of `lector chat` and `lector serve`: a bad file ends the command with its
reason; servers that fail to start are reported and the other tools keep working."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def open_mcp_tools(path: str | Path, prog: str) -> tuple[Any, list[Any]]:
    """(hub, tools) for a `--mcp-config FILE` option: starts the servers and reports on stderr those that
    failed (their tools are missing; the model sees why). A bad file ends the command with its reason."""
    from lector.tools.mcp.client import MCPHub
    from lector.tools.mcp.config import MCPConfigError

    try:
        hub = MCPHub(path)
    except MCPConfigError as exc:
        raise SystemExit(f"{prog}: {exc}") from None
    if sys.stderr.isatty() and hub.servers:
        print(f"starting {len(hub.servers)} MCP server(s)…", file=sys.stderr, flush=True)
    tools = hub.tools()
    for why in hub.errors.values():
        print(f"{prog}: {why}", file=sys.stderr, flush=True)
    return hub, tools


def check_mcp_config(path: str | Path, prog: str) -> None:
    """End the command with the reason when the `--mcp-config` file is unreadable or malformed."""
    from lector.tools.mcp.config import MCPConfigError, load_mcp_config

    try:
        load_mcp_config(path)
    except MCPConfigError as exc:
        raise SystemExit(f"{prog}: {exc}") from None
