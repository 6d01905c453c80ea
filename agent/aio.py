"""Asyncio helpers for streams that must stop on request: race awaits against a cancel event, cancel futures
without waiting long on ones that ignore it, and close generators even while the event loop shuts down."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

CLEANUP_WAIT = 1.0
"""Seconds to wait for something being cancelled or closed to unwind."""


class Cancelled(Exception):
    """The caller set the cancel event."""


class SafeAclosing:
    """Like contextlib.aclosing, but tolerant of a generator the event loop is already closing
    (loop.shutdown_asyncgens closes every open generator at once, in no particular order)."""

    def __init__(self, agen: AsyncGenerator[Any, None]) -> None:
        self.agen = agen

    async def __aenter__(self) -> AsyncGenerator[Any, None]:
        return self.agen

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.agen.aclose()
        except RuntimeError:
            log.debug("generator already closing", exc_info=True)


async def cancel_and_wait(futures: set[asyncio.Future[Any]], timeout: float = CLEANUP_WAIT) -> None:
    """Cancel and give them a moment to unwind; never wait long for one that ignores cancellation."""
    live = {f for f in futures if not f.done()}
    for f in live:
        f.cancel()
    if live:
        await asyncio.wait(live, timeout=timeout)
    for f in futures:  # mark exceptions retrieved so asyncio does not log them
        if f.done() and not f.cancelled():
            f.exception()


class Canceller:
    """Races awaits against the caller's cancel event; without an event it awaits directly."""

    def __init__(self, event: asyncio.Event | None) -> None:
        self.event = event
        self._waiter: asyncio.Future[Any] | None = None

    def check(self) -> None:
        if self.event is not None and self.event.is_set():
            raise Cancelled

    async def first_done(self, futures: set[asyncio.Future[Any]]) -> set[asyncio.Future[Any]]:
        """The futures that are done once any is; raises Cancelled when the event comes first."""
        self.check()
        if self.event is None:
            done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
            return done
        if self._waiter is None:
            self._waiter = asyncio.ensure_future(self.event.wait())
        done, _ = await asyncio.wait(futures | {self._waiter}, return_when=asyncio.FIRST_COMPLETED)
        if self._waiter in done:
            raise Cancelled
        return done

    async def run(self, aw: Awaitable[T]) -> T:
        """Await `aw`, abandoning (and cancelling) it when the event is set."""
        if self.event is None:
            return await aw
        if self.event.is_set():
            if inspect.iscoroutine(aw):
                aw.close()
            raise Cancelled
        fut = asyncio.ensure_future(aw)
        try:
            await self.first_done({fut})
        except BaseException:
            await cancel_and_wait({fut})
            raise
        return fut.result()

    def close(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            try:
                self._waiter.cancel()
            except RuntimeError:  # its loop is already closed
                pass


async def next_or_none(stream: AsyncIterator[T]) -> T | None:
    """The stream's next item, or None at its end."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def close_quietly(stream: AsyncIterator[Any]) -> None:
    """Close a stream if it can be closed, bounded in time; a failure to close is only logged."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await asyncio.wait_for(aclose(), timeout=CLEANUP_WAIT)
    except (Exception, asyncio.CancelledError):  # best effort: whoever closes is done with the stream anyway
        log.debug("closing the stream failed", exc_info=True)
