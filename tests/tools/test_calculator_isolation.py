"""The calculator's work runs in a child process: a timeout really stops it, and the event loop never waits for it."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lector.llm.messages import ToolCall
from lector.tools.base import ToolContext, ToolResult
from lector.tools.calculator import TARGET, Calculator, calculator
from lector.tools.process_pool import ProcessPool, WorkerFailed, WorkerTimeout, _Child
from lector.tools.registry import ToolRegistry
from tests.tools.loop_watch import burnt_while_idle, longest_gap

BOMB = "pow(3, 10**3900, 10**3900 + 1)"
"""Seconds of CPU in one C call that holds the GIL; the estimate refuses it, so tests lift the budget."""
REPORTED = "+".join(["pow(3,10**3900,10**3900+1)"] * 20)


@pytest.fixture
def pool() -> Iterator[ProcessPool]:
    own = ProcessPool()
    yield own
    own.close()


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def call(expression: str) -> ToolCall:
    return ToolCall(name="calculator", arguments=json.dumps({"expression": expression}))


async def test_the_reported_expression_is_refused_without_stalling_the_loop() -> None:
    registry = ToolRegistry([calculator])
    started = time.monotonic()
    result, gap = await longest_gap(registry.execute(call(REPORTED)))
    assert result.error and "pow() with a modulus" in result.content and "limit" in result.content
    assert time.monotonic() - started < 1.0
    assert gap < 0.5, f"the event loop stalled for {gap:.2f} s"
    assert burnt_while_idle() < 0.25  # nothing keeps computing in this process


async def test_a_bomb_past_the_estimate_is_killed_at_the_deadline(pool: ProcessPool) -> None:
    unbudgeted = Calculator(work_budget=math.inf, seconds=0.5, pool=pool)
    registry = ToolRegistry([unbudgeted])
    seen: set[int] = set()

    async def run() -> ToolResult:
        task = asyncio.create_task(registry.execute(call(BOMB)))
        while not task.done():
            seen.update(pool.pids())
            await asyncio.sleep(0.02)
        return await task

    started = time.monotonic()
    result, gap = await longest_gap(run())
    assert result.error and "did not finish within 0.5 s and was stopped" in result.content
    assert time.monotonic() - started < 2.0
    assert gap < 0.5, f"the event loop stalled for {gap:.2f} s"
    assert seen and all(gone(pid) for pid in seen), "the worker that ran the bomb must be gone"
    assert burnt_while_idle() < 0.25


async def test_small_calls_are_answered_while_a_bomb_runs(pool: ProcessPool) -> None:
    bomb = asyncio.create_task(pool.call(TARGET, BOMB, math.inf, timeout=3.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    for i in range(5):
        assert await pool.call(TARGET, f"{i} * 7", 5e6, timeout=3.0) == str(i * 7)
    assert time.monotonic() - started < 1.5 and not bomb.done()
    bomb.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bomb


async def test_cancelling_the_caller_kills_the_child(pool: ProcessPool) -> None:
    task = asyncio.create_task(pool.call(TARGET, BOMB, math.inf, timeout=30.0))
    deadline = time.monotonic() + 5
    while not pool.pids() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    pids = pool.pids()
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pids and all(gone(pid) for pid in pids)


async def test_timeouts_errors_and_a_dead_child_are_reported_and_survived(pool: ProcessPool) -> None:
    with pytest.raises(WorkerTimeout, match="did not finish within 0.3 s"):
        await pool.call(TARGET, BOMB, math.inf, timeout=0.3)
    with pytest.raises(WorkerFailed) as info:
        await pool.call(TARGET, "1/0", 5e6, timeout=3.0)
    assert info.value.kind == "CalculatorError" and str(info.value) == "division by zero"
    with pytest.raises(WorkerFailed, match="has no attribute 'nothing_here'"):
        await pool.call("lector.tools.arithmetic:nothing_here", timeout=3.0)
    assert await pool.call(TARGET, "2 ** 10", 5e6, timeout=3.0) == "1024"
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)  # an idle child dies behind the pool's back
    await asyncio.sleep(0.1)
    assert await pool.call(TARGET, "2 ** 11", 5e6, timeout=3.0) == "2048"


def test_the_child_stops_itself_at_its_cpu_limit() -> None:
    """If the host cannot kill it (stalled, or gone), the child's own CPU rlimit ends the work."""
    child = _Child()
    try:
        line = json.dumps({"target": TARGET, "args": [BOMB, math.inf], "cpu_seconds": 0.1}) + "\n"
        started = time.monotonic()
        with pytest.raises(WorkerFailed, match="died .*signal"):
            child.request(line.encode(), time.monotonic() + 30)
        assert time.monotonic() - started < 5
    finally:
        child.kill()


async def test_warm_calls_cost_little(pool: ProcessPool) -> None:
    tool = Calculator(pool=pool)
    args = tool.Args(expression="6 * 7")
    assert await tool.run(args, ToolContext()) == "42"  # starts the child
    times = []
    for _ in range(50):
        started = time.perf_counter()
        assert await tool.run(args, ToolContext()) == "42"
        times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.01, f"median {statistics.median(times) * 1000:.2f} ms"


async def test_a_caller_cancelled_while_its_child_starts_leaks_nothing(pool: ProcessPool) -> None:
    task = asyncio.create_task(pool.call(TARGET, "1 + 1", 5e6, timeout=3.0))
    await asyncio.sleep(0.001)  # the child is being started in a thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 5
    while not pool.pids() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert await pool.call(TARGET, "2 + 2", 5e6, timeout=3.0) == "4"
    assert len(pool.pids()) == 1  # the child started for the cancelled call was given back and reused
