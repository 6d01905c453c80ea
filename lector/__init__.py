"""Lector: an agent framework and long-document reader.

The public facade. Names load on first use, so `import lector` stays cheap:

    from lector import Assistant, ask, aask, tool, Tool, Library, make_backend

The layers are reached as `lector.llm`, `lector.tools`, `lector.retrieval`, `lector.agent` and
`lector.webui`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lector.agent.assistant import Assistant
    from lector.agent.reader import aask, ask
    from lector.llm.factory import make_backend
    from lector.retrieval.library import Library
    from lector.tools.base import Tool, tool

__all__ = ["Assistant", "Library", "Tool", "aask", "ask", "make_backend", "tool"]

_HOMES = {
    "Assistant": "lector.agent.assistant",
    "ask": "lector.agent.reader",
    "aask": "lector.agent.reader",
    "tool": "lector.tools.base",
    "Tool": "lector.tools.base",
    "Library": "lector.retrieval.library",
    "make_backend": "lector.llm.factory",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lector' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
