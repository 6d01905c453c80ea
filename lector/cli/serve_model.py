"""`lector serve-model`: the embedded model itself as an OpenAI-compatible API (any OpenAI client can use it)."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lector.cli.threads_option import add_threads_option, apply_threads

if TYPE_CHECKING:
    from lector.llm.backend import Backend


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-model",
        help="serve the model as an OpenAI-compatible API (/v1/chat/completions, /v1/models)",
        description="Serve the model itself (no agent, no tools run here) as an OpenAI-compatible API. Native "
        "`tools` become the model's prompt-based calling; requests share the engine's parallel slots. "
        "Loopback only unless an access token is given; every request needs 'Authorization: Bearer <token>'.",
    )
    p.add_argument("--model", default=None, help="model spec (default $LECTOR_MODEL or the embedded 1.5B)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=None, help="access token (default $LECTOR_TOKEN or the data folder's)")
    p.add_argument("--parallel", type=int, default=4, help="parallel slots of the embedded engine (default 4)")
    p.add_argument("--ctx", type=int, default=8192, help="context window of the embedded engine (default 8192)")
    add_threads_option(p)
    p.add_argument("--served-name", default=None, help="model id clients use (default the model's name)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the token is kept")
    p.add_argument("--allow-host", action="append", default=[], help="extra Host header value to accept")
    p.add_argument("--rate-per-minute", type=int, default=6000, help="request rate limit (default 6000)")
    p.add_argument(
        "--record-prompts", action="store_true", help="keep each request's prompt text in GET /v1/usage (benchmarks)"
    )
    p.add_argument(
        "--no-prompt-cache",
        action="store_true",
        help="process every prompt from scratch, so repeated prompts are timed cold (benchmarks)",
    )
    p.set_defaults(func=run)


def make_model_backend(
    spec: str | None, parallel: int, ctx: int, threads: int | None, prompt_cache: bool = True
) -> Backend:
    """The backend to serve; an embedded model is returned unloaded (see `preload`)."""
    from lector.llm.factory import default_spec, make_backend

    spec = spec or default_spec()
    kind, _, rest = spec.partition(":")
    if rest and kind != "embedded":
        return make_backend(spec)
    return make_backend(spec, n_parallel=parallel, n_ctx=ctx, n_threads=threads, prompt_cache=prompt_cache, lazy=True)


def preload(backend: Backend) -> threading.Thread:
    """Load the model in the background and say when it is ready; requests that come sooner wait for it."""

    def run() -> None:
        try:
            backend.load()
        except Exception as exc:  # requests report it too; the server keeps answering /health
            print(f"Model {backend.name} failed to load: {exc}", file=sys.stderr, flush=True)
            return
        runtime = backend.runtime()
        print(f"Model {backend.name} ready{': ' + runtime if runtime else ''}", flush=True)

    thread = threading.Thread(target=run, name="lector-preload", daemon=True)
    thread.start()
    return thread


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lector.llm.models import prepare_model
    from lector.webui.config import ServerConfig
    from lector.webui.model_server import create_model_app

    config = ServerConfig(
        host=args.host, port=args.port, model=args.model, token=args.token, allowed_hosts=args.allow_host
    )
    if args.data_dir is not None:
        config.data_dir = args.data_dir
    config.check_binding()
    apply_threads(args)
    prepare_model(config.model)
    backend = make_model_backend(args.model, args.parallel, args.ctx, args.threads, not args.no_prompt_cache)
    preload(backend)
    token = config.resolved_token()
    app = create_model_app(
        backend,
        model_id=args.served_name,
        token=token,
        allowed_hosts=config.host_allowlist(),
        rate_per_minute=args.rate_per_minute,
        burst=max(120, args.rate_per_minute // 6),
        record_prompts=args.record_prompts,
    )
    shown = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    model_id = args.served_name or backend.name
    print(
        f"Serving {model_id} at http://{shown}:{config.port}/v1 ({backend.parallel_slots} parallel slots)", flush=True
    )
    if args.token is None:
        print(f"Access token: {token}  (send 'Authorization: Bearer <token>')", flush=True)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=3)
    finally:
        backend.close()
    return 0
