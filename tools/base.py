"""The Tool base: a typed function (or a small class) whose JSON schema comes from its signature."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import BaseModel, Field, create_model

from lector.llm.messages import ToolSpec


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
    """A tool. Set `name`, `description`, `parameters` (JSON schema) and implement `run`."""

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    timeout: float = 60.0
    """Seconds the registry lets one call run before it reports a timeout to the model."""

    @abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult | str:
        """Run with arguments already validated against `parameters`."""

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


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
    model = create_model(f"{fn.__name__}_args", **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return description, schema


class FunctionTool(Tool):
    """A tool made from a typed function; sync functions run in a worker thread."""

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, timeout: float | None = None
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.description, self.parameters = schema_from_signature(fn)
        self.wants_ctx = "ctx" in inspect.signature(fn).parameters
        if timeout is not None:
            self.timeout = timeout

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult | str:
        kwargs = dict(args)
        if self.wants_ctx:
            kwargs["ctx"] = ctx
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:
            result = await asyncio.to_thread(self.fn, **kwargs)
        if isinstance(result, ToolResult | str):
            return result
        return json.dumps(result, ensure_ascii=False, default=str)


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, timeout: float | None = None
) -> Any:
    """Decorator: turn a typed function with a docstring into a Tool. Usable bare or with arguments."""
    if fn is None:
        return lambda f: FunctionTool(f, name=name, timeout=timeout)
    return FunctionTool(fn, name=name, timeout=timeout)
