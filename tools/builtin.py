"""The built-in tools by name: name -> factory that builds a fresh Tool."""

from __future__ import annotations

from collections.abc import Callable

from tools.base import Tool


def _calculator() -> Tool:
    from tools.calculator import calculator

    return calculator


def builtin_tools() -> dict[str, Callable[[], Tool]]:
    return {"calculator": _calculator}
