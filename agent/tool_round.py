"""One round of tool calls: run every call the model made at once, each bounded in time, stream start and
finish events as they happen, and answer the calls in the transcript in call order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from lector.agent.aio import Cancelled, Canceller, cancel_and_wait
from lector.agent.events import Event, ToolCallFinished, ToolCallStarted
from lector.llm.messages import Message, ToolCall, new_call_id
from lector.tools.base import ToolContext, ToolResult
from lector.tools.registry import ToolRegistry, timeout_message

CANCELLED_TOOL = "Error: cancelled before it finished."
TIMEOUT_GRACE = 2.0
"""Seconds past a tool's own timeout before the loop stops waiting for a tool that ignores cancellation."""
MIN_TOOL_CHARS = 1000


def unique_ids(calls: list[ToolCall]) -> list[ToolCall]:
    """Calls with distinct ids (models sometimes repeat or omit them), so results pair up unambiguously."""
    seen: set[str] = set()
    out = []
    for call in calls:
        if not call.id or call.id in seen:
            call = call.model_copy(update={"id": new_call_id()})
        seen.add(call.id)
        out.append(call)
    return out


def for_model(result: ToolResult, limit: int) -> str:
    """The text the model sees for a result: its source, the content (shortened), notes for images."""
    text = result.content
    if result.source and result.source not in text:
        text = f"Source: {result.source}\n{text}"
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} more characters cut]"
    if result.images:
        text += f"\n[{len(result.images)} image(s) shown to the user]"
    return text


def _finished_event(call: ToolCall, result: ToolResult, elapsed: float, step: int) -> ToolCallFinished:
    return ToolCallFinished(
        call_id=call.id,
        name=call.name,
        content=result.content,
        error=result.error,
        images=result.images,
        files=result.files,
        source=result.source,
        elapsed=round(elapsed, 3),
        step=step,
    )


class ToolRunner:
    """Runs the rounds of one turn.

    `tool_timeout` caps every call (on top of each tool's own timeout); each result shown to the model is cut
    to `max_chars`, or by default to the model's window shared among the round's calls.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        ctx: ToolContext,
        canceller: Canceller,
        *,
        tool_timeout: float | None,
        max_chars: int | None,
        context_size: int,
    ) -> None:
        self.registry = registry
        self.ctx = ctx
        self.canceller = canceller
        self.tool_timeout = tool_timeout
        self.max_chars = max_chars
        self.context_size = context_size

    def _limit(self, call: ToolCall) -> float | None:
        if self.tool_timeout is not None:
            return self.tool_timeout
        tool = self.registry.get(call.name)
        return tool.timeout + TIMEOUT_GRACE if tool is not None and tool.timeout else None

    async def _execute(self, call: ToolCall) -> tuple[ToolResult, float]:
        """Run one call through the registry, bounded even when the tool ignores cancellation."""
        started = time.monotonic()
        limit = self._limit(call)
        task = asyncio.ensure_future(self.registry.execute(call, self.ctx))
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
        except BaseException:
            await cancel_and_wait({task})
            raise
        if task in done:
            try:
                result = task.result()
            except BaseException as exc:  # a tool raising CancelledError itself, or a registry bug
                result = ToolResult.failure(f"Error: {call.name} failed: {type(exc).__name__}: {exc}"[:500])
        else:
            task.cancel()
            result = ToolResult.failure(timeout_message(self.registry.get(call.name), call.name, limit))
        return result, time.monotonic() - started

    async def run(
        self, calls: list[ToolCall], step: int, transcript: list[Message], results: list[ToolResult]
    ) -> AsyncGenerator[Event, None]:
        """Run all calls at once; yield start/finish events as they happen; fill `results` and append the
        tool messages to `transcript`, both in call order.

        The tool messages are appended even when the run is cancelled, so the transcript stays well-formed.
        """
        tasks: dict[asyncio.Future[Any], int] = {
            asyncio.ensure_future(self._execute(c)): i for i, c in enumerate(calls)
        }
        pending: set[asyncio.Future[Any]] = set(tasks)
        done_results: dict[int, ToolResult] = {}
        try:
            for call in calls:
                yield ToolCallStarted(call_id=call.id, name=call.name, arguments=call.arguments, step=step)
            while pending:
                done = await self.canceller.first_done(pending)
                for task in sorted(done, key=lambda t: tasks[t]):
                    pending.discard(task)
                    index = tasks[task]
                    done_results[index], elapsed = task.result()
                    yield _finished_event(calls[index], done_results[index], elapsed, step)
        except Cancelled:
            await cancel_and_wait(pending)
            for task in sorted(pending, key=lambda t: tasks[t]):
                index = tasks[task]
                done_results[index] = ToolResult.failure(CANCELLED_TOOL)
                yield _finished_event(calls[index], done_results[index], 0.0, step)
            raise
        finally:
            if pending:
                await cancel_and_wait(pending)
            limit = self.max_chars or max(MIN_TOOL_CHARS, self.context_size // len(calls))
            for index, call in enumerate(calls):
                result = done_results.get(index) or ToolResult.failure(CANCELLED_TOOL)
                results.append(result)
                transcript.append(Message.tool(call.id, call.name, for_model(result, limit)))
