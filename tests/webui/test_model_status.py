"""The model loads in the background when the server starts, and GET /api/status tells how far it is.

The model here is SCRIPTED (not a language model) with a loader that waits until the test lets it finish.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lector.llm.scripted import ScriptedBackend
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from lector.webui.state import AppState, ModelLoad, lazy_options
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class SlowLoading(ScriptedBackend):
    """A scripted model whose load() blocks until `release` is set, then fails if `failure` is given."""

    name = "slow-scripted"

    def __init__(self, failure: Exception | None = None) -> None:
        super().__init__(default="Loaded and answering.")
        self.release = threading.Event()
        self.failure = failure
        self.loads = 0

    def load(self) -> None:
        self.loads += 1
        assert self.release.wait(10)
        if self.failure is not None:
            raise self.failure

    def runtime(self) -> str:
        return "in process, 1 thread(s)"


def wait_for_state(base: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        model: dict[str, Any] = httpx.get(base + "/api/status", headers=AUTH).json()["model"]
        if model["state"] == state:
            return model
        time.sleep(0.02)
    raise AssertionError(f"the model never reached {state!r}")


def serve(tmp_path: Path, backend: ScriptedBackend, heard: list[ModelLoad]) -> Any:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
    return serve_app(create_app(config, backend=backend, on_model_ready=heard.append), port)


def test_status_shows_loading_then_ready(tmp_path: Path) -> None:
    backend = SlowLoading()
    heard: list[Any] = []
    with serve(tmp_path, backend, heard) as base:
        loading = wait_for_state(base, "loading")
        assert loading["name"] == "slow-scripted" and backend.loads == 1  # started at startup, before any message
        backend.release.set()
        ready = wait_for_state(base, "ready")
        assert ready == {"state": "ready", "name": "slow-scripted", "message": "in process, 1 thread(s)"}
        assert [m.state for m in heard] == ["ready"]
        assert httpx.get(base + "/api/status").status_code == 401  # behind the token like every /api route


def test_a_failed_load_is_an_error_with_its_reason(tmp_path: Path) -> None:
    backend = SlowLoading(failure=RuntimeError("no such model file"))
    heard: list[Any] = []
    with serve(tmp_path, backend, heard) as base:
        backend.release.set()
        failed = wait_for_state(base, "error")
        assert "no such model file" in failed["message"]
        assert heard[0].state == "error"


def test_preload_builds_the_default_backend_once(tmp_path: Path) -> None:
    built: list[str | None] = []

    def factory(spec: str | None) -> ScriptedBackend:
        built.append(spec)
        backend = SlowLoading()
        backend.release.set()
        return backend

    state = AppState(ServerConfig(data_dir=tmp_path, model="some-model", tools=[]), backend_factory=factory)
    assert state.model.as_json() == {"state": "loading", "name": "some-model", "message": ""}
    state.preload().join(10)
    assert state.model.state == "ready"
    assert state.backend() is state.backend()
    assert built == ["some-model"]
    state.close()


@pytest.mark.parametrize(
    "spec, options",
    [
        (None, {"lazy": True}),
        ("qwen2.5-coder-0.5b", {"lazy": True}),
        ("embedded:/models/x.gguf", {"lazy": True}),
        ("openai:http://127.0.0.1:8000/v1#m", {}),
        ("transformers:/models/x", {}),
    ],
)
def test_only_embedded_models_are_built_unloaded(
    spec: str | None, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LECTOR_MODEL", raising=False)
    assert lazy_options(spec) == options
