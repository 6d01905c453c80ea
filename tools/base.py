"""The Tool base: a typed function, or a small class with a pydantic Args model, whose JSON schema comes from it."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, get_type_hints

from pydantic import BaseModel, Field, create_model

from lector.llm.messages import ToolSpec
from lector.tools.process_pool import ProcessPool, WorkerFailed


class ToolResult(BaseModel):
    """What a tool gives back. `content` goes to the model; `images` and `files` go to the UI."""

    content: str
    error: bool = False
    images: list[str] = Field(default_factory=list)
    """Images as data URLs (e.g. 'data:image/png;base64,...')."""
    files: list[str] = Field(default_factory=list)
    """Paths of files the tool produced (e.g. a fetched PDF, or files the code wrote)."""
    source: str | None = None
    """Where the content came from (a URL, a file), shown with it."""

    @classmethod
    def failure(cls, message: str) -> ToolResult:
        return cls(content=message, error=True)


@dataclass
class ToolContext:
    """What a tool may know about the conversation that called it."""

    conversation_id: str = "default"
    attachments: list[Path] = field(default_factory=list)
    """Files attached to the conversation."""
    user_texts: list[str] = field(default_factory=list)
    """The user's messages so far (the web fetch URL policy reads them)."""
    state: dict[str, Any] = field(default_factory=dict)
    """Per-conversation scratch space shared by tools (e.g. links of fetched pages)."""


class Tool(ABC):
    """A tool: a `name`, a `description`, its arguments, and `run`.

    Declare the arguments as a pydantic model named `Args`: `parameters` (the JSON schema the model sees)
    is derived from it, and `run` receives a validated `Args` instance. A tool whose schema comes from
    elsewhere (an MCP server's) sets `parameters` itself and receives the arguments as a dict.
    """

    name: str = ""
    description: str = ""
    Args: ClassVar[type[BaseModel] | None] = None
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    timeout: float = 60.0
    """Seconds the registry lets one call run before it reports a timeout to the model."""
    stopped_by_timeout: bool = True
    """Whether a timeout stops the call's work (cancelling it); False for a sync function run in a thread,
    which runs on after the registry has answered."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("Args")
        if model is not None:
            cls.parameters = function_schema(model)

    def parse(self, args: dict[str, Any]) -> Any:
        """What `run` receives for arguments that passed `parameters`: an `Args` instance, else the dict.

        Raises pydantic's ValidationError when the model refuses them (a validator the schema cannot express).
        """
        return args if self.Args is None else self.Args.model_validate(args)

    @abstractmethod
    async def run(self, args: Any, ctx: ToolContext) -> ToolResult | str:
        """Run with validated arguments, as `parse` gives them."""

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


_VALUE_KEYS = frozenset({"default", "examples", "const", "enum"})
"""Keys whose values are data, not schemas: left as they are."""


def function_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic model's JSON schema as function calling wants it.

    References are inlined (models often read `$defs` badly), titles are dropped (noise in the prompt),
    and the top level refuses unknown keys unless the model allows extra fields.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    clean = _inline(schema, defs, ())
    clean.setdefault("properties", {})
    clean.setdefault("additionalProperties", False)
    return clean


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            raise ValueError(f"the schema of {name} refers to itself, which function calling cannot express")
        out.update(_inline(defs[name], defs, (*seen, name)))
    for key, value in node.items():
        if key == "$ref" or (key == "title" and isinstance(value, str)):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {prop: _inline(sub, defs, seen) for prop, sub in value.items()}
        elif key in _VALUE_KEYS:
            out[key] = value
        else:
            out[key] = _inline(value, defs, seen)
    return out


_PARAM_DOC = re.compile(r"^\s*(?::param\s+)?(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


_SECTIONS = {"args:": "args", "arguments:": "args", "parameters:": "args", "params:": "args"}
_OTHER_SECTIONS = ("returns:", "return:", "raises:", "yields:", "examples:", "example:", "notes:", "note:")


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description and per-parameter help from a Google- or reST-style docstring.

    Google sections other than Args (Returns, Raises, ...) are left out of the description;
    an indented line under a parameter continues its help.
    """
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    summary: list[str] = []
    params: dict[str, str] = {}
    section = "summary"
    last: str | None = None
    last_indent = 0
    for line in lines:
        stripped = line.strip()
        lowered = stripped.lower()
        indent = len(line) - len(line.lstrip())
        if lowered in _SECTIONS:
            section, last = "args", None
            continue
        if lowered in _OTHER_SECTIONS:
            section, last = "other", None
            continue
        if stripped.startswith((":return", ":raise", ":rtype", ":type")):
            last = None
            continue
        match = _PARAM_DOC.match(line)
        if (section == "args" or stripped.startswith(":param")) and match:
            last, last_indent = match.group(1), indent
            params[last] = match.group(2).strip()
        elif last is not None and stripped and indent > last_indent:
            params[last] = f"{params[last]} {stripped}"
        elif section == "summary" and not stripped.startswith(":"):
            last = None
            summary.append(stripped)
        else:
            last = None
    return " ".join(s for s in summary if s).strip(), params


def schema_from_signature(fn: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """(description, JSON schema) for a function's parameters, from its type hints and docstring."""
    description, param_docs = _split_docstring(fn.__doc__ or "")
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if pname in ("self", "ctx") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, Field(default, description=param_docs.get(pname)))
    return description, function_schema(create_model(f"{fn.__name__}_args", **fields))


ISOLATED = ProcessPool()
"""The child processes of isolated function tools."""


class FunctionTool(Tool):
    """A tool made from a typed function; a sync function runs in a thread of its own per call.

    A timeout cannot stop a thread: the registry answers at once that the call took too long, and the
    thread runs on (a daemon thread, so it neither takes a thread of the shared executor nor holds up exit).
    An `isolated` function runs in a child process instead (process_pool.py), which the timeout really
    stops and which never holds this process's GIL: for CPU-bound work or work that may not end. It must be
    a module-level sync function without `ctx` that returns text or JSON values.

    At most `max_threads` calls of one sync tool run at a time, so calls that never end cannot pile up
    threads without bound: past that, a call is refused with a message.
    """

    max_threads: ClassVar[int] = 32

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, timeout: float | None = None, isolated: bool = False
    ) -> None:
        self.fn = fn
        self.__wrapped__ = fn  # where a child process finds the function behind the tool the decorator made
        self.name = name or fn.__name__
        self.description, self.parameters = schema_from_signature(fn)
        self.wants_ctx = "ctx" in inspect.signature(fn).parameters
        if timeout is not None:
            self.timeout = timeout
        self.target = _isolated_target(fn, self.wants_ctx) if isolated else None
        self.stopped_by_timeout = isolated or inspect.iscoroutinefunction(fn)
        self._threads = 0
        self._threads_lock = threading.Lock()

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult | str:
        if self.target is not None:
            return await self._run_isolated(self.target, dict(args))
        kwargs = dict(args)
        if self.wants_ctx:
            kwargs["ctx"] = ctx
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:
            result = await self._in_thread(kwargs)
        return _as_result(result)

    async def _in_thread(self, kwargs: dict[str, Any]) -> Any:
        """`fn(**kwargs)` in a daemon thread; cancelling the await leaves the thread to finish alone."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()
        with self._threads_lock:
            if self._threads >= self.max_threads:
                return ToolResult.failure(
                    f"Error: {self.name} is already running {self._threads} calls (earlier ones may be stuck past "
                    "their timeout), so this one was not started. Try again later; a tool that may hang should be "
                    "marked isolated=True so its timeout stops it."
                )
            self._threads += 1

        def work() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (context.run(self.fn, **kwargs), None)
            except BaseException as exc:  # handed to the awaiting coroutine, like to_thread would
                outcome = (None, exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            finally:
                with self._threads_lock:
                    self._threads -= 1
            try:
                loop.call_soon_threadsafe(_settle, future, *outcome)
            except RuntimeError:  # the loop closed while the call ran: nobody waits for it
                pass

        threading.Thread(target=work, name=f"tool {self.name}", daemon=True).start()
        return await future

    async def _run_isolated(self, target: str, kwargs: dict[str, Any]) -> ToolResult | str:
        """In a child process; the registry's timeout cancels this call, which kills the child."""
        try:
            result = await ISOLATED.call(target, kwargs=kwargs, timeout=self.timeout + 1)
        except WorkerFailed as exc:
            return ToolResult.failure(f"Error: {self.name} failed: {exc.kind or 'error'}: {exc}"[:500])
        return _as_result(result)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():  # cancelled by a timeout
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _as_result(result: Any) -> ToolResult | str:
    if isinstance(result, ToolResult | str):
        return result
    return json.dumps(result, ensure_ascii=False, default=str)


def _isolated_target(fn: Callable[..., Any], wants_ctx: bool) -> str:
    """The "module:name" of a function a child process can import and call; ValueError says why not."""
    why = ""
    if wants_ctx:
        why = "it takes ctx, which cannot leave this process"
    elif inspect.iscoroutinefunction(fn):
        why = "it is async; isolate sync, CPU-bound functions"
    elif "." in fn.__qualname__ or fn.__module__ == "__main__":
        why = "a child process can only import a module-level function of an importable module"
    if why:
        raise ValueError(f"{fn.__qualname__} cannot be an isolated tool: {why}")
    return f"{fn.__module__}:{fn.__qualname__}"


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout: float | None = None,
    isolated: bool = False,
) -> Any:
    """Decorator: turn a typed function with a docstring into a Tool. Usable bare or with arguments.

    `timeout`: seconds a call may run (default `Tool.timeout`) before the model is told it took too long.
    An async function is cancelled then. A sync function runs in a thread, which cannot be stopped: the
    model gets the error at once but the thread runs on, so a sync tool that may loop or hang should be
    `isolated=True`: it then runs in a child process that the timeout kills (see FunctionTool). That needs a
    module-level function without `ctx` whose arguments and result are JSON values, and it does not share
    this process's state (globals, caches, open clients); hence it is not the default.
    """
    if fn is None:
        return lambda f: FunctionTool(f, name=name, timeout=timeout, isolated=isolated)
    return FunctionTool(fn, name=name, timeout=timeout, isolated=isolated)
