"""Why the planner loop goes on, retries or stops: every rule in one place.

The loop tells `StopRules.decide` what happened (the model replied, or the tools ran) and gets back what to do
next: continue, retry with a note to the model, ask for an answer without tools, or finish with an answer.
The rules: a step budget; a call that keeps failing the same way (stuck); a reply that only repeats calls
already answered, or feeds a tool its own result back (repeat, echo); a tool call the model wrote but that
could not be read (told why and retried a bounded number of times); and never an empty answer.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from lector.agent.events import StopReason
from lector.llm.messages import ToolCall
from lector.tools.base import ToolResult

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

NO_ANSWER = "The model produced no answer."
NO_ANSWER_UNREADABLE_CALL = "The model produced no answer: it wrote a tool call that could not be read ({error})."
NO_ANSWER_TOKEN_LIMIT = "The model produced no answer: it reached its output token limit before writing one."
EMPTY_BUDGET_ANSWER = "I could not finish within the step budget and have no answer yet."

SHORT_RESULT_CHARS = 200
"""Results up to this long are remembered, to notice a call that only feeds a tool its own result."""
ERROR_CHARS = 300


@dataclass(frozen=True)
class Replied:
    """A model reply: its text, the calls it made, and why a call it tried to write could not be read."""

    text: str
    calls: list[ToolCall] = field(default_factory=list)
    call_error: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class ToolsRan:
    """The reply's calls ran; `results` are in call order."""

    calls: list[ToolCall]
    results: list[ToolResult]


@dataclass(frozen=True)
class Continue:
    """Go on: run the reply's calls, or, after tools ran, call the model again with the tools."""


@dataclass(frozen=True)
class Retry:
    """Call the model again with the tools, telling it `note` (on that call only)."""

    note: str


@dataclass(frozen=True)
class AskForAnswer:
    """Stop tool use: one last model call without tools, told `note`; the turn then ends with `reason`."""

    note: str
    reason: StopReason


@dataclass(frozen=True)
class Finish:
    """The turn ends with `answer` as the final message."""

    answer: str
    reason: StopReason = "done"


Decision = Continue | Retry | AskForAnswer | Finish


def call_key(call: ToolCall) -> tuple[str, str]:
    """A call's name and arguments, the same however the arguments' JSON is spaced or ordered."""
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


def _without_answer(reply: Replied, reason: StopReason) -> str:
    """What the person is told when the model's last reply has no text."""
    if reason == "budget":
        return EMPTY_BUDGET_ANSWER
    if reply.call_error:
        return NO_ANSWER_UNREADABLE_CALL.format(error=reply.call_error[:ERROR_CHARS])
    if reply.finish_reason == "length":
        return NO_ANSWER_TOKEN_LIMIT
    return NO_ANSWER


class StopRules:
    """The state of one turn's rules: `max_steps` model calls may use tools; the same failing call, or an
    unreadable call, is tried at most `max_repeated_failures` times."""

    def __init__(self, max_steps: int, max_repeated_failures: int = 3) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.max_steps = max_steps
        self.max_repeated_failures = max_repeated_failures
        self.steps = 0
        self.tools_ran = False
        self.call_errors = 0
        self.failures: Counter[tuple[str, str]] = Counter()
        self.answered: set[tuple[str, str]] = set()
        self.outputs: set[tuple[str, str]] = set()
        self.asked: AskForAnswer | None = None

    def decide(self, happened: Replied | ToolsRan) -> Decision:
        if isinstance(happened, ToolsRan):
            return self._after_tools(happened)
        if self.asked is not None:  # the reply to the last call, made without tools: any calls in it are ignored
            answer = happened.text if happened.text.strip() else _without_answer(happened, self.asked.reason)
            return Finish(answer, self.asked.reason)
        self.steps += 1
        return self._after_reply(happened)

    def _after_reply(self, reply: Replied) -> Decision:
        if reply.calls:
            if all(call_key(c) in self.answered or _echoes(c, self.outputs) for c in reply.calls):
                return self._ask(REPEAT_NOTE, "budget")
            return Continue()
        if reply.call_error and self.call_errors < self.max_repeated_failures - 1:
            self.call_errors += 1
            return self._within_budget(Retry(CALL_ERROR_NOTE.format(error=reply.call_error[:ERROR_CHARS])))
        if reply.text.strip():
            return Finish(reply.text)
        if self.tools_ran:  # it saw results but said nothing: ask once more for the answer
            return self._ask(ANSWER_NOTE, "done")
        return Finish(_without_answer(reply, "done"))

    def _after_tools(self, ran: ToolsRan) -> Decision:
        self.tools_ran = True
        for call, result in zip(ran.calls, ran.results, strict=True):
            if result.error:
                self.failures[call_key(call)] += 1
            else:
                self.answered.add(call_key(call))
                if len(result.content) <= SHORT_RESULT_CHARS:
                    self.outputs.add((call.name, result.content.strip()))
        if self.failures and max(self.failures.values()) >= self.max_repeated_failures:
            return self._ask(STUCK_NOTE, "budget")
        return self._within_budget(Continue())

    def _within_budget(self, decision: Decision) -> Decision:
        return decision if self.steps < self.max_steps else self._ask(BUDGET_NOTE, "budget")

    def _ask(self, note: str, reason: StopReason) -> AskForAnswer:
        self.asked = AskForAnswer(note, reason)
        return self.asked
