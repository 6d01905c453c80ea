"""A registry of tools: unique names, central argument validation, and errors the model can read.

It is the boundary between the model and the tools: arguments and results are made valid Unicode
(a lone surrogate such as "\\ud800" becomes U+FFFD) on the way in and on the way out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

import jsonschema
from pydantic import ValidationError

from lector.llm.messages import ToolCall, ToolSpec
from lector.llm.unicode import valid_json, valid_text
from lector.tools.base import FunctionTool, Tool, ToolContext, ToolResult

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lector.tools"


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return FunctionTool(obj)
    raise TypeError(f"not a tool: {obj!r}")


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, obj: Tool | Callable[..., Any]) -> Tool:
        t = as_tool(obj)
        if not t.name:
            raise ValueError("a tool needs a name")
        if t.name in self._tools:
            raise ValueError(f"duplicate tool name: {t.name!r}")
        self._tools[t.name] = t
        return t

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register third-party tools published under the entry-point group; returns their names.

        A plugin that fails to load, is not a tool, or reuses a taken name is skipped with a
        warning in the log: one broken plugin must not take the others (or the app) down.
        """
        loaded = []
        for ep in entry_points(group=group):
            try:
                obj = ep.load()
                if isinstance(obj, type) and issubclass(obj, Tool):
                    obj = obj()
                loaded.append(self.register(obj).name)
            except Exception as exc:
                log.warning("skipped tool plugin %s (%s): %s: %s", ep.name, ep.value, type(exc).__name__, exc)
        return loaded

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [t.spec() for t in self._tools.values()]

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    async def execute(self, call: ToolCall, ctx: ToolContext | None = None) -> ToolResult:
        """Validate and run one call. Never raises (except cancellation): failures become a short message."""
        return valid_result(await self._execute(call, ctx))

    async def _execute(self, call: ToolCall, ctx: ToolContext | None) -> ToolResult:
        t = self._tools.get(call.name)
        if t is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult.failure(f"Error: unknown tool {call.name!r}. Available tools: {known}.")
        args, problem = _arguments(t, call)
        if problem:
            return ToolResult.failure(f"Error: {problem}")
        try:
            result = await asyncio.wait_for(t.run(args, ctx or ToolContext()), timeout=t.timeout)
        except TimeoutError:
            return ToolResult.failure(timeout_message(t, call.name))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the model gets a line, the log gets the traceback
            log.exception("tool %s failed", call.name)
            return ToolResult.failure(f"Error: {call.name} failed: {type(exc).__name__}: {exc}"[:500])
        return result if isinstance(result, ToolResult) else ToolResult(content=str(result))


def timeout_message(t: Tool | None, name: str, limit: float | None = None) -> str:
    """What the model and the person see when a call ran past its time limit (the tool's timeout by default)."""
    seconds = (t.timeout if t is not None else 0) if limit is None else limit
    if t is None or t.stopped_by_timeout:
        return f"Error: {name} did not finish within {seconds:g} s and was stopped."
    log.warning("tool %s ran past its %g s limit and runs on in a thread; mark it isolated=True", name, seconds)
    return (
        f"Error: tool {name} took longer than {seconds:g} s; it was not stopped because it runs in-process "
        "(a sync function in a thread) and may still be running. Mark it isolated=True to run it in a child "
        "process that the timeout stops."
    )


def valid_result(result: ToolResult) -> ToolResult:
    """`result` with its text fields made valid Unicode."""
    return result.model_copy(
        update={
            "content": valid_text(result.content),
            "source": None if result.source is None else valid_text(result.source),
            "files": [valid_text(f) for f in result.files],
            "images": [valid_text(i) for i in result.images],
        }
    )


def _arguments(t: Tool, call: ToolCall) -> tuple[Any, str | None]:
    """The call's arguments as the tool's `run` takes them (valid Unicode), or what is wrong with them."""
    try:
        args = valid_json(json.loads(call.arguments or "{}"))
    except json.JSONDecodeError as exc:
        return None, f"arguments for {call.name} are not valid JSON ({exc.msg})."
    if not isinstance(args, dict):
        return None, f"arguments for {call.name} must be a JSON object."
    problem = validation_error(args, t.parameters)
    if problem is None:
        try:
            return t.parse(args), None
        except ValidationError as exc:
            problem = model_error(exc)
    return None, f"invalid arguments for {call.name}: {problem}"


def validation_error(args: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """A one-line description of the first way `args` breaks `schema`, or None."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def model_error(exc: ValidationError) -> str:
    """A one-line description of the first error pydantic found."""
    error = exc.errors(include_url=False)[0]
    where = "/".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
