"""`lector serve`: the web UI, chat API, OpenAI-compatible API and extension backend."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lector.cli.threads_option import add_threads_option, apply_threads

if TYPE_CHECKING:
    from lector.webui.state import ModelLoad


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web UI and APIs")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--model", default=None, help="model spec (default: the embedded 1.5B model)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the database, uploads and token live")
    p.add_argument("--token", default=None, help="access token (default: generated and kept in the data folder)")
    p.add_argument("--extension-id", action="append", default=[], help="Chrome extension id allowed by CORS")
    p.add_argument("--allow-host", action="append", default=[], help="extra Host header value to accept")
    p.add_argument("--mcp-config", type=Path, default=None, help='add the tools of MCP servers ({"mcpServers": ...})')
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lector.cli.mcp_config_option import check_mcp_config
    from lector.llm.models import prepare_model
    from lector.webui.app import create_app
    from lector.webui.config import ServerConfig

    apply_threads(args)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        model=args.model,
        token=args.token,
        extension_ids=args.extension_id,
        allowed_hosts=args.allow_host,
        mcp_config=args.mcp_config,
    )
    if args.data_dir is not None:
        config.data_dir = args.data_dir
    config.check_binding()
    if config.mcp_config is not None:
        check_mcp_config(config.mcp_config, "lector serve")
    prepare_model(config.model)
    app = create_app(config, on_model_ready=_say_model_ready)
    token = config.resolved_token()
    shown = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    print(f"Lector is running at http://{shown}:{config.port}/?token={token}", flush=True)
    print(f"Access token: {token}  (stored in {config.data_dir / 'token'})", flush=True)
    print(
        f"Loading the model in the background ({config.model or 'default'}); the page shows when it is ready.",
        flush=True,
    )
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0


def _say_model_ready(model: ModelLoad) -> None:
    if model.state == "ready":
        print(f"Model {model.name} ready{': ' + model.message if model.message else ''}", flush=True)
    else:
        print(f"Model {model.name} failed to load: {model.message}", flush=True)
