"""Function tools marked isolated run in a child process: their timeout really stops them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lector.llm.messages import ToolCall
from lector.tools.base import ISOLATED, FunctionTool, ToolContext, tool
from lector.tools.registry import ToolRegistry
from tests.tools.isolated_tools import add, modular_power, refuse
from tests.tools.loop_watch import burnt_while_idle, longest_gap


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name=name, arguments=json.dumps(arguments))


async def test_a_cpu_bound_isolated_tool_is_stopped_at_its_timeout() -> None:
    registry = ToolRegistry([modular_power])
    assert (await registry.execute(call("modular_power", digits=30))).content == str(pow(3, 10**30, 10**30 + 1) % 1000)
    before = ISOLATED.pids()
    result, gap = await longest_gap(registry.execute(call("modular_power", digits=3900)))
    assert result.error and result.content == "Error: modular_power did not finish within 2 s and was stopped."
    assert gap < 0.5, f"the event loop stalled for {gap:.2f} s"
    assert burnt_while_idle() < 0.25  # nothing is computing in this process
    assert before and all(not Path(f"/proc/{pid}").exists() for pid in before - ISOLATED.pids())
    assert before - ISOLATED.pids(), "the child that ran the call was replaced"


async def test_isolated_tools_return_json_values_and_report_errors() -> None:
    registry = ToolRegistry([add, refuse])
    assert (await registry.execute(call("add", a=2, b=3))).content == '{"sum": 5}'
    result = await registry.execute(call("refuse", reason="no such thing"))
    assert result.error and result.content == "Error: refuse failed: ValueError: no such thing"
    assert add.spec().parameters["required"] == ["a", "b"]


def test_what_cannot_be_isolated_is_refused_when_the_tool_is_made() -> None:
    def local(x: int) -> int:
        """Local."""
        return x

    def with_ctx(x: int, ctx: ToolContext) -> int:
        """Takes ctx."""
        return x

    async def coroutine(x: int) -> int:
        """Async."""
        return x

    for fn, why in ((local, "module-level"), (with_ctx, "ctx"), (coroutine, "async")):
        with pytest.raises(ValueError, match=why):
            tool(fn, isolated=True)
    assert FunctionTool(local).target is None  # not isolated: runs in a thread as before
