"""The Tool base and the registry: schemas, class tools, entry points, and errors the model can read."""

from __future__ import annotations

import asyncio
import importlib
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lector.llm.messages import ToolCall
from lector.tools.base import (
    FunctionTool,
    Tool,
    ToolContext,
    ToolResult,
    function_schema,
    schema_from_signature,
    tool,
)
from lector.tools.builtin import builtin_tools
from lector.tools.registry import ToolRegistry, validation_error
from tests.tools.loop_watch import longest_gap


def search(query: str, limit: int = 5, mode: Literal["fast", "exact"] = "fast", tags: list[str] | None = None) -> str:
    """Search the notes.

    Args:
        query: what to look for.
        limit (int): how many hits to return,
            at most 50.
        mode: fast or exact matching.

    Returns:
        The hits, one a line.
    """
    return f"{query}:{limit}:{mode}:{tags}"


def rest_style(x: float, ctx: ToolContext) -> float:
    """Double a number.

    :param x: the number.
    """
    return x * 2


class Counter(Tool):
    """A class-form tool that keeps state between calls."""

    name = "counter"
    description = "Count calls."

    class Args(BaseModel):
        step: int = Field(1, description="how much to add")

        @field_validator("step")
        @classmethod
        def positive(cls, step: int) -> int:
            if step < 1:
                raise ValueError("the step must be positive")
            return step

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[object] = []

    async def run(self, args: Args, ctx: ToolContext) -> ToolResult | str:
        self.seen.append(args)
        self.count += args.step
        ctx.state["counter"] = self.count
        return str(self.count)


class Remote(Tool):
    """A tool whose schema comes from elsewhere (as an MCP server's does): it gets the arguments as a dict."""

    name = "remote"

    def __init__(self) -> None:
        self.parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        return f"{type(args).__name__}:{args['n']}"


def call(name: str, arguments: str = "{}") -> ToolCall:
    return ToolCall(name=name, arguments=arguments)


# ---------------------------------------------------------------- schemas


def test_schema_from_signature_and_google_docstring() -> None:
    description, schema = schema_from_signature(search)
    assert description == "Search the notes."
    assert schema["type"] == "object"
    assert schema["required"] == ["query"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["query"] == {"type": "string", "description": "what to look for."}
    assert props["limit"]["type"] == "integer" and props["limit"]["default"] == 5
    assert props["limit"]["description"] == "how many hits to return, at most 50."
    assert props["mode"]["enum"] == ["fast", "exact"]
    assert "title" not in schema and all("title" not in p for p in props.values())


def test_schema_rest_docstring_and_ctx_is_hidden() -> None:
    t = FunctionTool(rest_style)
    assert t.description == "Double a number."
    assert list(t.parameters["properties"]) == ["x"]
    assert t.parameters["properties"]["x"] == {"type": "number", "description": "the number."}
    assert t.wants_ctx


def test_tool_decorator_bare_and_with_arguments() -> None:
    @tool
    def ping() -> str:
        """Say pong."""
        return "pong"

    @tool(name="echo_text", timeout=3)
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    assert isinstance(ping, Tool) and ping.name == "ping" and ping.description == "Say pong."
    assert ping.parameters == {"type": "object", "properties": {}, "additionalProperties": False}
    assert echo.name == "echo_text" and echo.timeout == 3
    assert echo.spec().to_openai()["function"]["name"] == "echo_text"


class Point(BaseModel):
    """A point."""

    x: float
    y: float = 0.0


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: str = Field(description="a property that happens to be called title")
    corners: list[Point]
    centre: Point | None = Field(None, description="where it is")


def test_class_tool_schema_comes_from_its_args_model() -> None:
    assert Counter.parameters == {
        "type": "object",
        "properties": {"step": {"type": "integer", "default": 1, "description": "how much to add"}},
        "additionalProperties": False,
    }
    assert Counter().spec().parameters == Counter.parameters


def test_function_schema_inlines_references_and_drops_titles() -> None:
    schema = function_schema(Shape)
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["additionalProperties"] is True  # the model allows extra fields
    props = schema["properties"]
    assert props["title"] == {"type": "string", "description": "a property that happens to be called title"}
    point = {
        "type": "object",
        "description": "A point.",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
    }
    assert props["corners"] == {"type": "array", "items": point}
    assert props["centre"]["anyOf"] == [point, {"type": "null"}]
    assert props["centre"]["description"] == "where it is"
    assert schema["required"] == ["title", "corners"]


def test_function_schema_refuses_a_model_that_refers_to_itself() -> None:
    class Tree(BaseModel):
        children: list[Tree] = []

    with pytest.raises(ValueError, match="refers to itself"):
        function_schema(Tree)


async def test_function_tool_runs_sync_async_and_with_ctx() -> None:
    ctx = ToolContext(conversation_id="c1")
    assert await FunctionTool(search).run({"query": "q"}, ctx) == "q:5:fast:None"
    assert await FunctionTool(rest_style).run({"x": 2.5}, ctx) == "5.0"  # non-str results become JSON

    async def later(n: int) -> dict[str, int]:
        """Async."""
        await asyncio.sleep(0)
        return {"n": n}

    assert await FunctionTool(later).run({"n": 3}, ctx) == '{"n": 3}'


# ---------------------------------------------------------------- registry


def test_registry_names_specs_and_duplicates() -> None:
    registry = ToolRegistry([search, Counter()])
    assert registry.names() == ["search", "counter"]
    assert len(registry) == 2 and "counter" in registry and "nope" not in registry
    assert [s.name for s in registry.specs()] == ["search", "counter"]
    assert isinstance(registry.get("search"), FunctionTool)
    assert registry.get("nope") is None
    with pytest.raises(ValueError, match="duplicate tool name"):
        registry.register(search)
    with pytest.raises(ValueError, match="duplicate tool name"):
        registry.register(Counter())


def test_registry_rejects_nameless_and_non_tools() -> None:
    class Nameless(Tool):
        async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
            return ""

    with pytest.raises(ValueError, match="needs a name"):
        ToolRegistry([Nameless()])
    with pytest.raises(TypeError):
        ToolRegistry([42])  # type: ignore[list-item]


async def test_class_tool_keeps_state_and_receives_its_args_model() -> None:
    counter = Counter()
    registry = ToolRegistry([counter])
    ctx = ToolContext()
    assert (await registry.execute(call("counter"), ctx)).content == "1"
    assert (await registry.execute(call("counter", '{"step": 5}'), ctx)).content == "6"
    assert counter.count == 6 and ctx.state["counter"] == 6
    assert counter.seen == [Counter.Args(step=1), Counter.Args(step=5)]


async def test_a_tool_without_args_model_receives_the_dict() -> None:
    registry = ToolRegistry([Remote()])
    assert (await registry.execute(call("remote", '{"n": 3}'))).content == "dict:3"
    bad = await registry.execute(call("remote", '{"n": "three"}'))
    assert bad.error and bad.content == "Error: invalid arguments for remote: n: 'three' is not of type 'integer'"


async def test_args_model_validators_refuse_with_a_short_message() -> None:
    counter = Counter()
    result = await ToolRegistry([counter]).execute(call("counter", '{"step": 0}'))
    assert result.error
    assert result.content == "Error: invalid arguments for counter: step: Value error, the step must be positive"
    assert counter.seen == []  # the tool never ran


async def test_execute_success() -> None:
    registry = ToolRegistry([search])
    result = await registry.execute(call("search", '{"query": "cats", "limit": 2}'))
    assert result == ToolResult(content="cats:2:fast:None")


async def test_unknown_tool_is_a_short_message() -> None:
    registry = ToolRegistry([search, Counter()])
    result = await registry.execute(call("serach", '{"query": "x"}'))
    assert result.error
    assert result.content == "Error: unknown tool 'serach'. Available tools: counter, search."


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"limit": 3}', "'query' is a required property"),
        ('{"query": 5}', "query: 5 is not of type 'string'"),
        ('{"query": "x", "mode": "slow"}', "mode: 'slow' is not one of ['fast', 'exact']"),
        ('{"query": "x", "extra": 1}', "Additional properties are not allowed"),
        ('{"query": "x", "limit": "many"}', "limit: 'many' is not of type 'integer'"),
        ('{"query": "x",', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("null", "must be a JSON object"),
    ],
)
async def test_invalid_arguments_are_short_messages(arguments: str, expected: str) -> None:
    registry = ToolRegistry([search])
    result = await registry.execute(call("search", arguments))
    assert result.error
    assert result.content.startswith("Error: ")
    assert expected in result.content
    assert "Traceback" not in result.content and "\n" not in result.content


async def test_empty_arguments_mean_no_arguments() -> None:
    registry = ToolRegistry([Counter()])
    assert (await registry.execute(call("counter", ""))).content == "1"


async def test_exception_inside_tool_is_a_short_message(caplog: pytest.LogCaptureFixture) -> None:
    @tool
    def broken(x: int) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire " + "x" * 2000)

    registry = ToolRegistry([broken])
    result = await registry.execute(call("broken", '{"x": 1}'))
    assert result.error
    assert result.content.startswith("Error: broken failed: RuntimeError: disk on fire")
    assert len(result.content) <= 500
    assert "Traceback" not in result.content
    assert "Traceback" in caplog.text  # the host log keeps the details


async def test_hanging_tool_times_out() -> None:
    cancelled = asyncio.Event()
    released = threading.Event()
    finished: list[str] = []

    @tool(timeout=0.2)
    async def hang() -> str:
        """Never returns."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "done"

    @tool(timeout=0.2)
    def hang_sync() -> str:
        """Blocks a worker thread until the test releases it."""
        released.wait(30)
        finished.append("hang_sync")
        return "done"

    registry = ToolRegistry([hang, hang_sync])
    result = await registry.execute(call("hang"))
    assert result.error and result.content == "Error: hang did not finish within 0.2 s and was stopped."
    assert cancelled.is_set()  # the async tool's work was stopped
    result = await registry.execute(call("hang_sync"))
    assert result.error and "took longer than 0.2 s; it was not stopped" in result.content
    assert "isolated=True" in result.content and "was stopped." not in result.content
    assert finished == []  # the registry answered while the sync tool still ran
    released.set()


async def test_sync_tools_that_never_return_hold_no_shared_thread_nor_the_loop() -> None:
    released = threading.Event()

    @tool(timeout=0.1)
    def spin() -> str:
        """Loops until the test releases it."""
        while not released.is_set():
            released.wait(0.01)
        return "done"

    registry = ToolRegistry([spin])
    try:
        calls = asyncio.gather(*(registry.execute(call("spin")) for _ in range(40)))  # over any executor's size
        results, gap = await longest_gap(calls)
        timed_out = [r for r in results if "took longer than 0.1 s" in r.content]
        refused = [r for r in results if "is already running 32 calls" in r.content]
        assert len(timed_out) == spin.max_threads == 32 and len(refused) == 8  # stuck threads are capped
        assert gap < 0.5, f"the event loop stalled {gap:.2f} s"
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), timeout=5) == "free"
        released.set()
        for _ in range(500):  # once the stuck calls end, the tool runs again
            result = await registry.execute(call("spin"))
            if not result.error:
                break
            await asyncio.sleep(0.01)
        assert result.content == "done"
    finally:
        released.set()


async def test_cancellation_propagates() -> None:
    @tool
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(3600)
        return ""

    registry = ToolRegistry([slow])
    task = asyncio.create_task(registry.execute(call("slow")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_tool_result_objects_pass_through() -> None:
    @tool
    def picture() -> ToolResult:
        """A picture."""
        return ToolResult(content="see image", images=["data:image/png;base64,AAAA"], source="x.png")

    result = await ToolRegistry([picture]).execute(call("picture"))
    assert result.images == ["data:image/png;base64,AAAA"] and result.source == "x.png"


def test_validation_error_helper() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert validation_error({"a": 1}, schema) is None
    assert validation_error({"a": "x"}, schema) == "a: 'x' is not of type 'integer'"


# ---------------------------------------------------------------- entry points


def _make_plugin(root: Path, dist: str, module: str, entries: dict[str, str], source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[lector.tools]\n{lines}\n")


PLUGIN_SOURCE = """
    from pydantic import BaseModel

    from lector.tools.base import Tool, ToolContext, tool


    @tool
    def shout(text: str) -> str:
        '''Upper-case the text.'''
        return text.upper()


    def whisper(text: str) -> str:
        '''Lower-case the text.'''
        return text.lower()


    class Reverse(Tool):
        name = "reverse"
        description = "Reverse the text."

        class Args(BaseModel):
            text: str

        async def run(self, args: Args, ctx: ToolContext) -> str:
            return args.text[::-1]
"""


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("lector_test_plugin")]:
        del sys.modules[name]


async def test_entry_points_load_instances_functions_and_classes(plugin_path: Path) -> None:
    _make_plugin(
        plugin_path,
        "lector_test_plugin",
        "lector_test_plugin_mod",
        {
            "shout": "lector_test_plugin_mod:shout",
            "whisper": "lector_test_plugin_mod:whisper",
            "reverse": "lector_test_plugin_mod:Reverse",
        },
        PLUGIN_SOURCE,
    )
    importlib.invalidate_caches()
    registry = ToolRegistry()
    loaded = registry.load_entry_points()
    assert sorted(loaded) == ["reverse", "shout", "whisper"]
    assert (await registry.execute(call("shout", '{"text": "hi"}'))).content == "HI"
    assert (await registry.execute(call("whisper", '{"text": "HI"}'))).content == "hi"
    assert (await registry.execute(call("reverse", '{"text": "abc"}'))).content == "cba"


def test_broken_or_duplicate_entry_points_are_skipped(plugin_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _make_plugin(
        plugin_path,
        "lector_test_plugin_bad",
        "lector_test_plugin_bad_mod",
        {
            "missing": "lector_test_plugin_bad_mod:does_not_exist",
            "shout": "lector_test_plugin_bad_mod:shout",
            "not_a_tool": "lector_test_plugin_bad_mod:NUMBER",
        },
        PLUGIN_SOURCE + "\nNUMBER = 3\n",
    )
    importlib.invalidate_caches()
    registry = ToolRegistry()

    @tool(name="shout")
    def mine(text: str) -> str:
        """Already registered."""
        return text

    registry.register(mine)
    assert registry.load_entry_points() == []
    assert registry.get("shout") is mine
    assert "missing" in caplog.text and "shout" in caplog.text and "not_a_tool" in caplog.text


def test_no_entry_points_is_fine() -> None:
    assert ToolRegistry().load_entry_points(group="lector.tools.none_here") == []


# ---------------------------------------------------------------- built-ins


def test_builtin_factories_build_fresh_tools_of_their_name() -> None:
    factories = builtin_tools()
    assert set(factories) == {"calculator", "code_interpreter", "web_fetch"}
    for name, factory in factories.items():
        first, second = factory(), factory()
        assert first.name == second.name == name and first is not second
        for made in (first, second):
            close = getattr(made, "close", None)
            if close is not None:
                close()


def test_docstring_sections_and_continuations() -> None:
    def f(a: int, b: str = "x") -> str:
        """First line.

        More description
        on two lines.

        Args:
            a: the a,
                continued.

            b: the b.

        Raises:
            ValueError: when sad.
        """
        return b

    def g(a: int) -> int:
        """Do g.

        :param a: the a,
            continued.
        :returns: a number.
        """
        return a

    description, schema = schema_from_signature(f)
    assert description == "First line. More description on two lines."
    assert schema["properties"]["a"]["description"] == "the a, continued."
    assert schema["properties"]["b"]["description"] == "the b."
    description, schema = schema_from_signature(g)
    assert description == "Do g."
    assert schema["properties"]["a"]["description"] == "the a, continued."
