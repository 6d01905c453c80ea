"""The planner loop: call the model with the tools, run the calls it makes (concurrently), feed the results
back in call order, repeat until the stop rules end the turn, and stream what happens as events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

from lector.agent.aio import Cancelled, Canceller, SafeAclosing
from lector.agent.events import CallRetried, ErrorEvent, Event, Final, StepStarted
from lector.agent.model_calls import ModelCalls, ModelFailed, ModelReply
from lector.agent.stop_rules import (
    ERROR_CHARS,
    AskForAnswer,
    Continue,
    Decision,
    Finish,
    Retry,
    StopRules,
    ToolsRan,
)
from lector.agent.tool_round import ToolRunner, unique_ids
from lector.llm.backend import Backend, ChatOptions
from lector.llm.messages import Message
from lector.tools.base import ToolContext, ToolResult
from lector.tools.registry import ToolRegistry

log = logging.getLogger(__name__)


def _note(decision: Decision) -> list[Message]:
    """What the decision tells the model on the next call only (it is not kept in the transcript)."""
    return [Message.user(decision.note)] if isinstance(decision, Retry | AskForAnswer) else []


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
    - `tool_timeout` caps every call (on top of each tool's own `timeout`); `max_tool_chars` caps the result
      text the model sees.
    - Setting `cancel` stops the model stream and running tools; the turn ends with a Final whose
      stopped_reason is "cancelled".
      Cancelling the consuming task or closing the generator stops everything too, without a Final.
    - A model failure ends the turn with an ErrorEvent and Final(stopped_reason="error"); it never raises.
    - Tool use also stops early when the same call (name and arguments) has failed
      `max_repeated_failures` times, or when a reply only repeats calls already answered (or feeds a
      tool its own result back); see `stop_rules`. A turn that ends without a model error or a cancel
      never ends with an empty answer.
    - `messages` is not modified. New messages are appended to `transcript` as they are made (when given),
      so a caller keeps a well-formed record even of a cancelled turn; Final.messages holds them as well.
    """
    rules = StopRules(max_steps, max_repeated_failures)
    canceller = Canceller(cancel)
    model = ModelCalls(backend, registry.specs() or None, options or ChatOptions(), canceller)
    tools = ToolRunner(
        registry,
        ctx or ToolContext(),
        canceller,
        tool_timeout=tool_timeout,
        max_chars=max_tool_chars,
        context_size=backend.context_size,
    )
    new: list[Message] = transcript if transcript is not None else []
    first_new, steps, reply = len(new), 0, ModelReply(recorded=True)
    decision: Decision = Continue()
    try:
        while not isinstance(decision, Finish):
            canceller.check()
            steps += 1
            last_call = isinstance(decision, AskForAnswer)
            yield StepStarted(step=steps, final=last_call)
            reply = ModelReply()
            prompt = messages + new[first_new:] + _note(decision)
            async with SafeAclosing(model.stream(prompt, reply, steps, with_tools=not last_call)) as texts:
                async for text in texts:
                    yield text
            replied = reply.replied()
            decision = rules.decide(replied)
            reply.recorded = True
            if isinstance(decision, Retry) and replied.call_error:
                yield CallRetried(step=steps, error=replied.call_error[:ERROR_CHARS])
            if isinstance(decision, Continue):
                calls, results = unique_ids(reply.tool_calls), list[ToolResult]()
                new.append(Message.assistant(reply.text, calls))
                async with SafeAclosing(tools.run(calls, steps, new, results)) as tool_events:
                    async for event in tool_events:
                        yield event
                decision = rules.decide(ToolsRan(calls, results))
            elif not isinstance(decision, Finish) and reply.text.strip():
                new.append(Message.assistant(reply.text))  # what it said beside a call it retries or repeats
        stopped, final_text = decision.reason, decision.answer
    except Cancelled:
        stopped, final_text = "cancelled", reply.unrecorded_text()
    except ModelFailed as failed:
        # The person sees the message as an ErrorEvent; the traceback is for `-v` / debug logs.
        log.warning("model call failed: %s", failed.message)
        log.debug("model call failed", exc_info=failed.cause)
        stopped, final_text = "error", reply.unrecorded_text()
        yield ErrorEvent(message=failed.message, kind=type(failed.cause).__name__)
    except BaseException:  # task cancelled or generator closed: keep the record, then unwind
        if partial := reply.unrecorded_text():
            new.append(Message.assistant(partial))
        raise
    finally:
        canceller.close()
    final = Message.assistant(final_text)
    new.append(final)
    yield Final(message=final, messages=new[first_new:], usage=model.usage, steps=steps, stopped_reason=stopped)
