"""Watch an event loop while something runs on it: the longest gap between ticks of a 10 ms sleep."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def longest_gap(work: Awaitable[T]) -> tuple[T, float]:
    """Await `work` while another coroutine sleeps 10 ms at a time; its result and the longest gap seen (s)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        done.set()
        await ticker
    return result, max(gaps, default=0.0)


def cpu_seconds() -> float:
    """CPU time this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system


def burnt_while_idle(seconds: float = 0.5) -> float:
    """CPU time this process uses while the caller sleeps: near zero unless a thread is still computing."""
    before = cpu_seconds()
    time.sleep(seconds)
    return cpu_seconds() - before
