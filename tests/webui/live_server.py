"""Real HTTP servers for the web tests: the Lector app on a free loopback port, in a thread or a subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {base} did not start")


@contextmanager
def serve_app(app: Any, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


SCRIPTED_SERVER = Path(__file__).with_name("scripted_server.py")


def start_subprocess_server(data_dir: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    """The app with a SCRIPTED model in its own process, so a test can SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTED_SERVER), str(data_dir), str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_healthy(f"http://127.0.0.1:{port}")
    return proc
