"""The built-in tools by name: name -> factory that builds a fresh Tool.

Factories import their module only when called, so listing the built-ins stays cheap; a
built-in whose module is absent from this checkout is left out of the listing.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable

from lector.tools.base import Tool


def _calculator() -> Tool:
    from lector.tools.calculator import calculator

    return copy.copy(calculator)


def _code_interpreter() -> Tool:
    from lector.tools.code.tool import CodeInterpreter

    return CodeInterpreter()


def _web_fetch() -> Tool:
    from lector.tools.web.fetch import WebFetch

    return WebFetch()


_BUILTINS: dict[str, tuple[str, Callable[[], Tool]]] = {
    "calculator": ("lector.tools.calculator", _calculator),
    "code_interpreter": ("lector.tools.code.tool", _code_interpreter),
    "web_fetch": ("lector.tools.web.fetch", _web_fetch),
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def builtin_tools() -> dict[str, Callable[[], Tool]]:
    """Factories of the built-in tools present in this installation, by tool name."""
    return {name: factory for name, (module, factory) in _BUILTINS.items() if _available(module)}
