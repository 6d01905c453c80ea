"""Shared fixtures. `small_model` is the real embedded 0.5B model, loaded once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lector.llm.embedded import EmbeddedBackend


@pytest.fixture(scope="session")
def small_model() -> Iterator[EmbeddedBackend]:
    """The real Qwen2.5-Coder-0.5B on the embedded engine (4k context, 2 slots), shared by all tests."""
    backend = EmbeddedBackend("qwen2.5-coder-0.5b", n_ctx=4096, n_parallel=2)
    yield backend
    backend.close()
