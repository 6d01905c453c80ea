"""Shared fixtures and the markers that let a fast run skip the slow kinds of test.

`small_model` is the real embedded 0.5B model, loaded once per test session. Markers (see pyproject.toml):
`model` for tests that load a real model, `browser` for Chromium, `sandbox` for the bubblewrap sandbox,
`install` for the wheel test. A test gets them from its own decorators, from the fixtures it uses, or from
the table below for modules whose every test needs one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lector.llm.embedded import EmbeddedBackend
from lector.llm.models import DEFAULT_MODEL

MODULE_MARKS = {
    "tests/agent/test_e2e_embedded.py": "model",
    "tests/llm/test_embedded.py": "model",
    "tests/webui/test_chat_page.py": "browser",
    "tests/webui/test_extension.py": "browser",
    "tests/webui/test_docs_page.py": "browser",
    "tests/webui/test_reading_progress_page.py": "browser",
    "tests/tools/test_code_interpreter.py": "sandbox",
    "tests/tools/test_sandbox_attacks.py": "sandbox",
}
FIXTURE_MARKS = {
    "default_model": "model",
    "small_model": "model",
    "small_tf": "model",
    "real_base": "model",
    "http_server": "model",
}
# Tests that start a real model some other way (a subprocess, a real llama.cpp server, joining the GGUF parts).
NAME_MARKS = re.compile(r"real_(small_)?model|real_llamacpp|gguf_through_transformers")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::")[0]
        marks = {MODULE_MARKS.get(path)}
        marks |= {FIXTURE_MARKS.get(name) for name in getattr(item, "fixturenames", ())}
        if NAME_MARKS.search(item.name):
            marks.add("model")
        for mark in marks - {None}:
            item.add_marker(getattr(pytest.mark, str(mark)))


@pytest.fixture(scope="session")
def default_model() -> Iterator[EmbeddedBackend]:
    """The real default Qwen2.5-Coder-1.5B on the embedded engine (4k context, 1 slot), shared by all tests."""
    backend = EmbeddedBackend(DEFAULT_MODEL, n_ctx=4096, n_parallel=1)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def small_model() -> Iterator[EmbeddedBackend]:
    """The real Qwen2.5-Coder-0.5B on the embedded engine (4k context, 2 slots), shared by all tests."""
    backend = EmbeddedBackend("qwen2.5-coder-0.5b", n_ctx=4096, n_parallel=2)
    yield backend
    backend.close()
