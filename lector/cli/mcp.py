"""`lector mcp`: serve the long-document reader (index, search, ask) to MCP clients.

stdio by default (an MCP client starts `lector mcp` itself); `--http` serves streamable HTTP at
http://HOST:PORT/mcp, on loopback unless told otherwise, always behind a bearer token (the same token
and binding rules as `lector serve`: beyond loopback only with an explicit --token or $LECTOR_TOKEN).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lector.cli.threads_option import add_threads_option, apply_threads


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "mcp",
        help="serve index/search/ask to MCP clients (stdio, or streamable HTTP with --http)",
        description="Serve Lector's long-document reader over the Model Context Protocol: tools index(paths), "
        "search(query, k) and ask(question, level) with citations.",
    )
    p.add_argument("--http", action="store_true", help="serve streamable HTTP at /mcp instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --http (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8766, help="port with --http (default 8766)")
    p.add_argument(
        "--token",
        default=None,
        help="bearer token for --http (default: $LECTOR_TOKEN, else the one kept in the data folder)",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="where the generated token lives (--http)")
    p.add_argument("--model", default=None, help="model spec for `ask` (default $LECTOR_MODEL or the embedded 1.5B)")
    p.add_argument("--cache-dir", default=None, help="document cache (default $LECTOR_CACHE or ~/.cache/lector)")
    p.add_argument("--no-preload", action="store_true", help="load the model on the first `ask`, not at start")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lector.webui.mcp_server import build_mcp_server

    apply_threads(args)
    if not args.http:
        server = build_mcp_server(cache_dir=args.cache_dir, model=args.model)
        _preload(server, args)
        try:
            server.run("stdio")
        finally:
            server.reader.close()  # type: ignore[attr-defined]
        return 0

    import uvicorn

    from lector.webui.config import ServerConfig
    from lector.webui.mcp_server import http_app

    config = ServerConfig(host=args.host, port=args.port, token=args.token, model=args.model)
    if args.data_dir is not None:
        config.data_dir = args.data_dir
    config.check_binding()
    server = build_mcp_server(cache_dir=args.cache_dir, model=args.model)
    _preload(server, args)
    app = http_app(server, config)
    shown = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    print(f"Lector MCP server at http://{shown}:{config.port}/mcp", file=sys.stderr, flush=True)
    print(f"Send 'Authorization: Bearer {config.resolved_token()}'", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=3)
    finally:
        server.reader.close()  # type: ignore[attr-defined]
    return 0


def _preload(server: Any, args: argparse.Namespace) -> None:
    if not args.no_preload:
        server.reader.preload()
