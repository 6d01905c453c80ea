"""The planner loop: call the model with the tools, run the calls it makes (concurrently), feed the results
back in call order, repeat within a step budget, and stream what happens as events."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lector.agent.events import (
    ErrorEvent,
    Event,
    Final,
    StepStarted,
    StopReason,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.errors import LLMError
from lector.llm.messages import Message, ToolCall, ToolSpec, new_call_id
from lector.tools.base import ToolContext, ToolResult
from lector.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

T = TypeVar("T")

BUDGET_NOTE = (
    "You have used all your tool calls. Answer the question now from what you already know. "
    "Do not call any tool. If something is still unknown, say so briefly."
)
STUCK_NOTE = (
    "The same tool call keeps failing. Stop calling tools and answer now from what you already know; "
    "say briefly what you could not find out."
)
REPEAT_NOTE = (
    "You already have the results of these tool calls above. Do not call any tool again. "
    "Answer the question now, using those results."
)
CALL_ERROR_NOTE = (
    "Your tool call could not be used: {error}. Write it again as valid JSON in the format described, "
    "or answer directly."
)
ANSWER_NOTE = "Answer the question now, using the tool results above. Do not call any tool."
NO_ANSWER = "I could not produce an answer."
EMPTY_BUDGET_ANSWER = "I could not finish within the step budget and have no answer yet."
CANCELLED_TOOL = "Error: cancelled before it finished."
TIMEOUT_GRACE = 2.0
"""Seconds past a tool's own timeout before the loop stops waiting for a tool that ignores cancellation."""
CLEANUP_WAIT = 1.0
MIN_TOOL_CHARS = 1000


class _Cancelled(Exception):
    """The caller set the cancel event."""


class _ModelFailed(Exception):
    """The backend raised; the turn ends with an ErrorEvent."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


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


class _Canceller:
    """Races awaits against the caller's cancel event; without an event it awaits directly."""

    def __init__(self, event: asyncio.Event | None) -> None:
        self.event = event
        self._waiter: asyncio.Future[Any] | None = None

    def check(self) -> None:
        if self.event is not None and self.event.is_set():
            raise _Cancelled

    async def first_done(self, futures: set[asyncio.Future[Any]]) -> set[asyncio.Future[Any]]:
        """The futures that are done once any is; raises _Cancelled when the event comes first."""
        self.check()
        if self.event is None:
            done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
            return done
        if self._waiter is None:
            self._waiter = asyncio.ensure_future(self.event.wait())
        done, _ = await asyncio.wait(futures | {self._waiter}, return_when=asyncio.FIRST_COMPLETED)
        if self._waiter in done:
            raise _Cancelled
        return done

    async def run(self, aw: Awaitable[T]) -> T:
        """Await `aw`, abandoning (and cancelling) it when the event is set."""
        if self.event is None:
            return await aw
        if self.event.is_set():
            if inspect.iscoroutine(aw):
                aw.close()
            raise _Cancelled
        fut = asyncio.ensure_future(aw)
        try:
            await self.first_done({fut})
        except BaseException:
            await _cancel_and_wait({fut})
            raise
        return fut.result()

    def close(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            try:
                self._waiter.cancel()
            except RuntimeError:  # its loop is already closed
                pass


async def _cancel_and_wait(futures: set[asyncio.Future[Any]], timeout: float = CLEANUP_WAIT) -> None:
    """Cancel and give them a moment to unwind; never wait long for one that ignores cancellation."""
    live = {f for f in futures if not f.done()}
    for f in live:
        f.cancel()
    if live:
        await asyncio.wait(live, timeout=timeout)
    for f in futures:  # mark exceptions retrieved so asyncio does not log them
        if f.done() and not f.cancelled():
            f.exception()


@dataclass
class _Reply:
    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    recorded: bool = False
    error: Exception | None = None
    call_error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def _next_delta(stream: AsyncIterator[Delta]) -> Delta | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def _close_stream(stream: AsyncIterator[Delta]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await asyncio.wait_for(aclose(), timeout=CLEANUP_WAIT)
    except (Exception, asyncio.CancelledError):  # closing is best effort; the turn is over either way
        log.debug("closing the model stream failed", exc_info=True)


async def _stream_reply(
    backend: Backend,
    prompt: list[Message],
    tools: list[ToolSpec] | None,
    options: ChatOptions,
    step: int,
    reply: _Reply,
    canceller: _Canceller,
) -> AsyncGenerator[TextDelta, None]:
    """Stream one model call, yielding text as it comes and collecting calls, usage and any error
    into `reply`."""
    stream: AsyncIterator[Delta] | None = None
    try:
        stream = backend.astream(prompt, tools, options)
        while True:
            delta = await canceller.run(_next_delta(stream))
            if delta is None:
                return
            if delta.text:
                reply.parts.append(delta.text)
                yield TextDelta(text=delta.text, step=step)
            reply.tool_calls.extend(delta.tool_calls)
            if delta.usage is not None:
                reply.usage = delta.usage
            if delta.tool_call_error:
                reply.call_error = delta.tool_call_error
    except _Cancelled:
        raise
    except Exception as exc:  # any backend failure; what streamed so far stays in `reply`
        reply.error = exc
    finally:
        if stream is not None:
            await _close_stream(stream)


async def _execute(
    registry: ToolRegistry, call: ToolCall, ctx: ToolContext, tool_timeout: float | None
) -> tuple[ToolResult, float]:
    """Run one call through the registry, bounded even when the tool ignores cancellation."""
    started = time.monotonic()
    tool = registry.get(call.name)
    if tool_timeout is not None:
        limit: float | None = tool_timeout
    else:
        limit = tool.timeout + TIMEOUT_GRACE if tool is not None and tool.timeout else None
    task = asyncio.ensure_future(registry.execute(call, ctx))
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except BaseException:
        await _cancel_and_wait({task})
        raise
    if task in done:
        try:
            result = task.result()
        except BaseException as exc:  # a tool raising CancelledError itself, or a registry bug
            result = ToolResult.failure(f"Error: {call.name} failed: {type(exc).__name__}: {exc}"[:500])
    else:
        task.cancel()
        result = ToolResult.failure(f"Error: {call.name} did not finish within {limit:g} s and was stopped.")
    return result, time.monotonic() - started


def _for_model(result: ToolResult, limit: int) -> str:
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


async def _run_tools(
    registry: ToolRegistry,
    calls: list[ToolCall],
    ctx: ToolContext,
    step: int,
    tool_timeout: float | None,
    canceller: _Canceller,
    transcript: list[Message],
    char_limit: int,
    results: dict[int, ToolResult],
) -> AsyncGenerator[Event, None]:
    """Run all calls at once; yield start/finish events as they happen; append tool messages in call order.

    The tool messages are appended even when the run is cancelled, so the transcript stays well-formed.
    """
    tasks: dict[asyncio.Future[Any], int] = {
        asyncio.ensure_future(_execute(registry, c, ctx, tool_timeout)): i for i, c in enumerate(calls)
    }
    pending: set[asyncio.Future[Any]] = set(tasks)
    try:
        for call in calls:
            yield ToolCallStarted(call_id=call.id, name=call.name, arguments=call.arguments, step=step)
        while pending:
            done = await canceller.first_done(pending)
            for task in sorted(done, key=lambda t: tasks[t]):
                pending.discard(task)
                index = tasks[task]
                result, elapsed = task.result()
                results[index] = result
                yield _finished_event(calls[index], result, elapsed, step)
    except _Cancelled:
        await _cancel_and_wait(pending)
        for task in sorted(pending, key=lambda t: tasks[t]):
            index = tasks[task]
            results[index] = ToolResult.failure(CANCELLED_TOOL)
            yield _finished_event(calls[index], results[index], 0.0, step)
        raise
    finally:
        if pending:
            await _cancel_and_wait(pending)
        for index, call in enumerate(calls):
            result = results.get(index) or ToolResult.failure(CANCELLED_TOOL)
            transcript.append(Message.tool(call.id, call.name, _for_model(result, char_limit)))


def _unique_ids(calls: list[ToolCall]) -> list[ToolCall]:
    """Calls with distinct ids (models sometimes repeat or omit them), so results pair up unambiguously."""
    seen: set[str] = set()
    out = []
    for call in calls:
        if not call.id or call.id in seen:
            call = call.model_copy(update={"id": new_call_id()})
        seen.add(call.id)
        out.append(call)
    return out


def _call_key(call: ToolCall) -> tuple[str, str]:
    try:
        args = json.dumps(json.loads(call.arguments or "{}"), sort_keys=True)
    except ValueError:
        args = call.arguments.strip()
    return call.name, args


def _echoes(call: ToolCall, outputs: set[tuple[str, str]]) -> bool:
    """Whether the call only feeds a tool its own earlier result (a small model's loop, e.g.
    calculator("83810205") after calculator("12345*6789") returned 83810205)."""
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        return False
    values = list(args.values()) if isinstance(args, dict) else []
    return bool(values) and all((call.name, str(v).strip()) in outputs for v in values)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, LLMError):
        return f"Model error: {exc}" if str(exc) else f"Model error: {type(exc).__name__}"
    return f"Model error: {type(exc).__name__}: {exc}"


async def run_agent(
    backend: Backend,
    messages: list[Message],
    registry: ToolRegistry,
    *,
    ctx: ToolContext | None = None,
    max_steps: int = 8,
    tool_timeout: float | None = None,
    options: ChatOptions | None = None,
    cancel: asyncio.Event | None = None,
    transcript: list[Message] | None = None,
    max_tool_chars: int | None = None,
    max_repeated_failures: int = 3,
) -> AsyncGenerator[Event, None]:
    """Answer the conversation `messages`, calling tools from `registry`, and stream events.

    - Up to `max_steps` model calls may use tools; then one more call without tools forces an answer.
    - Calls made in one reply run concurrently; their results go back in call order.
    - `tool_timeout` caps every call (on top of each tool's own `timeout`).
    - Setting `cancel` stops the model stream and running tools; the turn ends with a Final whose
      stopped_reason is "cancelled".
      Cancelling the consuming task or closing the generator stops everything too, without a Final.
    - A model failure ends the turn with an ErrorEvent and Final(stopped_reason="error"); it never raises.
    - Tool use also stops early when the same call (name and arguments) has failed
      `max_repeated_failures` times, or when a reply only repeats calls already answered (or feeds a
      tool its own result back).
    - `messages` is not modified. New messages are appended to `transcript` as they are made (when given),
      so a caller keeps a well-formed record even of a cancelled turn; Final.messages holds them as well.
    """
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    ctx = ctx or ToolContext()
    new: list[Message] = transcript if transcript is not None else []
    first_new = len(new)
    specs = registry.specs() or None
    opts = options or ChatOptions()
    canceller = _Canceller(cancel)
    usage = Usage()
    steps = 0
    failures: Counter[tuple[str, str]] = Counter()
    reply = _Reply(recorded=True)
    stopped: StopReason = "done"
    final_text = ""

    def record_partial() -> None:
        if not reply.recorded and reply.text:
            new.append(Message.assistant(reply.text))
        reply.recorded = True

    try:
        note: str | None = BUDGET_NOTE
        forced_reason: StopReason = "budget"
        answered: set[tuple[str, str]] = set()  # (name, arguments) of calls that succeeded this turn
        outputs: set[tuple[str, str]] = set()  # (name, result) of short successful results
        retry_note: str | None = None  # said to the model on the next call only
        call_errors = 0
        for step in range(1, max_steps + 1):
            canceller.check()
            steps = step
            yield StepStarted(step=step)
            reply = _Reply()
            prompt = messages + new[first_new:] + ([Message.user(retry_note)] if retry_note else [])
            retry_note = None
            streaming = _stream_reply(backend, prompt, specs, opts, step, reply, canceller)
            async with SafeAclosing(streaming) as texts:
                async for text_event in texts:
                    yield text_event
            usage += reply.usage or Usage()
            if reply.error is not None:
                raise _ModelFailed(reply.error)
            reply.recorded = True
            if not reply.tool_calls and reply.call_error and call_errors < max_repeated_failures - 1:
                call_errors += 1  # a call it could not write: say why and let it try again
                retry_note = CALL_ERROR_NOTE.format(error=reply.call_error[:300])
                if reply.text.strip():
                    new.append(Message.assistant(reply.text))
                continue
            if not reply.tool_calls:
                if reply.text.strip() or not new[first_new:]:
                    final_text, note = reply.text, None
                else:  # tools ran but the model said nothing: ask once more for the answer
                    note, forced_reason = ANSWER_NOTE, "done"
                break
            if all(_call_key(c) in answered or _echoes(c, outputs) for c in reply.tool_calls):
                note = REPEAT_NOTE
                break
            calls = _unique_ids(reply.tool_calls)
            new.append(Message.assistant(reply.text, calls))
            results: dict[int, ToolResult] = {}
            char_limit = max_tool_chars or max(MIN_TOOL_CHARS, backend.context_size // len(calls))
            running = _run_tools(
                registry, calls, ctx, step, tool_timeout, canceller, new, char_limit, results
            )
            async with SafeAclosing(running) as tool_events:
                async for event in tool_events:
                    yield event
            for index, call in enumerate(calls):
                if results[index].error:
                    failures[_call_key(call)] += 1
                else:
                    answered.add(_call_key(call))
                    if len(results[index].content) <= 200:
                        outputs.add((call.name, results[index].content.strip()))
            if opts.tool_choice not in ("auto", "none"):  # a forced call is made once, not every step
                opts = opts.model_copy(update={"tool_choice": "auto"})
            if failures and max(failures.values()) >= max_repeated_failures:
                note = STUCK_NOTE
                break
        if note is not None:
            stopped = forced_reason
            canceller.check()
            steps += 1
            yield StepStarted(step=steps, final=True)
            reply = _Reply()
            final_opts = opts.model_copy(update={"tool_choice": "none"})
            prompt = messages + new[first_new:] + [Message.user(note)]
            answering = _stream_reply(backend, prompt, None, final_opts, steps, reply, canceller)
            async with SafeAclosing(answering) as texts:
                async for text_event in texts:
                    yield text_event
            usage += reply.usage or Usage()
            if reply.error is not None:
                raise _ModelFailed(reply.error)
            reply.recorded = True
            if reply.text.strip():
                final_text = reply.text
            else:
                final_text = EMPTY_BUDGET_ANSWER if stopped == "budget" else NO_ANSWER
    except _Cancelled:
        stopped, final_text = "cancelled", reply.text if not reply.recorded else ""
        reply.recorded = True
    except _ModelFailed as failed:
        log.warning("model call failed", exc_info=failed.cause)
        stopped, final_text = "error", reply.text if not reply.recorded else ""
        reply.recorded = True
        yield ErrorEvent(message=_describe(failed.cause), kind=type(failed.cause).__name__)
    except BaseException:  # task cancelled or generator closed: keep the record, then unwind
        record_partial()
        raise
    finally:
        canceller.close()
    final = Message.assistant(final_text)
    new.append(final)
    yield Final(message=final, messages=new[first_new:], usage=usage, steps=steps, stopped_reason=stopped)
