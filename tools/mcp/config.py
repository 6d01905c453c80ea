"""MCP server configuration in the common "mcpServers" JSON format.

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                  "env": {"DEBUG": "0"}},
        "web":   {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${WEB_TOKEN}"}}
    }}

Per server, besides command/args/env/cwd or url/headers: "timeout" (seconds one call may take, default 60),
"startup_timeout" (seconds to start and list tools, default 30), "disabled" (true skips it).
`${NAME}` in env and header values is replaced from the environment.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CALL_TIMEOUT = 60.0
DEFAULT_STARTUP_TIMEOUT = 30.0

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MCPConfigError(ValueError):
    pass


@dataclass
class MCPServerConfig:
    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_CALL_TIMEOUT
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


def _expand(value: str) -> str:
    return _VAR.sub(lambda m: os.environ.get(m.group(1), ""), value)


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MCPConfigError(f"{what} must be an object of strings")
    return {str(k): _expand(str(v)) for k, v in value.items()}


def _seconds(value: Any, default: float, what: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise MCPConfigError(f"{what} must be a positive number of seconds")
    return float(value)


def server_config(name: str, entry: Any) -> MCPServerConfig:
    if not isinstance(entry, Mapping):
        raise MCPConfigError(f"MCP server {name!r}: expected an object")
    where = f"MCP server {name!r}"
    kind = str(entry.get("type") or entry.get("transport") or "").lower()
    if kind in ("sse",):
        raise MCPConfigError(f"{where}: the SSE transport is not supported; use streamable HTTP")
    command, url = entry.get("command"), entry.get("url")
    if bool(command) == bool(url):
        raise MCPConfigError(f"{where}: give either 'command' (stdio) or 'url' (streamable HTTP)")
    args = entry.get("args") or []
    if not isinstance(args, list):
        raise MCPConfigError(f"{where}: 'args' must be a list")
    return MCPServerConfig(
        name=name,
        command=str(command) if command else None,
        args=[str(a) for a in args],
        env=_str_map(entry.get("env"), f"{where}: 'env'"),
        cwd=str(entry["cwd"]) if entry.get("cwd") else None,
        url=str(url) if url else None,
        headers=_str_map(entry.get("headers"), f"{where}: 'headers'"),
        timeout=_seconds(entry.get("timeout"), DEFAULT_CALL_TIMEOUT, f"{where}: 'timeout'"),
        startup_timeout=_seconds(entry.get("startup_timeout"), DEFAULT_STARTUP_TIMEOUT, f"{where}: 'startup_timeout'"),
    )


def parse_mcp_config(data: Any) -> list[MCPServerConfig]:
    """Servers from {"mcpServers": {...}} (or the bare {name: server} mapping); disabled ones are left out."""
    if not isinstance(data, Mapping):
        raise MCPConfigError("the MCP configuration must be a JSON object")
    servers = data.get("mcpServers", data.get("servers", data))
    if not isinstance(servers, Mapping):
        raise MCPConfigError("'mcpServers' must be an object of servers")
    return [
        server_config(str(name), entry)
        for name, entry in servers.items()
        if not (isinstance(entry, Mapping) and entry.get("disabled"))
    ]


MCPConfigSource = str | os.PathLike[str] | Mapping[str, Any] | list[MCPServerConfig]


def load_mcp_config(source: MCPConfigSource) -> list[MCPServerConfig]:
    """Servers from a JSON file path, an already-parsed mapping, or a list of MCPServerConfig."""
    if isinstance(source, list):
        return source
    if isinstance(source, Mapping):
        return parse_mcp_config(source)
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MCPConfigError(f"cannot read the MCP configuration {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise MCPConfigError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    return parse_mcp_config(data)
