"""The call gate: whether a reply in tool_choice 'auto' calls a function, read from the reply's own first token.

Before the reply, the engine reads the reply's prompt and reports the top probabilities of its first token
(`probe_options`: one token, no grammar, no sampling). The chance that the reply starts a call is the mass of the
tokens a call starts with (`call_probability`). At or above the threshold the reply is held to a list of calls from
its first token; below it, to plain text that starts no call (`gated`). That text is still read for calls: a model
held to prose often goes on to "use `f` with these arguments" and a fenced call, which is the call it meant to make,
and call grounding (`llm.call_grounding`) still holds back one on values nobody gave. The threshold sits above the
model's argmax: a small model's first token is most often a call even where no function fits, and the mass it puts
on text is what tells those requests apart.

The probe costs one prompt read, which the engine's prompt cache then gives the reply for free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lector.llm.backend import ChatOptions

if TYPE_CHECKING:  # prompt_calling runs the gate
    from lector.llm.prompt_calling import PromptRequest

CALL_STARTS = ("<", "{", "[", "```")
"""How a reply that calls begins: `<tool_call>`, a bare call object or list, a fenced block."""
TOP_TOKENS = 20
"""Top tokens the probe asks for: past them the mass left is too small to move a threshold."""
DEFAULT_THRESHOLD = 0.5
NO_CALL_GRAMMAR = '%llguidance {}\nstart: /(?s:[^<{\\[`\\s].*)/ | ""\n'
"""Plain text whose first character starts no call; special tokens (`<tool_call>`) cannot come at all, since a
grammar lets them through only where it names them."""


@dataclass(frozen=True)
class TokenProb:
    """One candidate for a token, as the engine reports it."""

    token: str
    logprob: float


def call_probability(top: Sequence[TokenProb]) -> float:
    """The probability that a reply whose first-token candidates are `top` starts a call."""
    return sum(math.exp(t.logprob) for t in top if t.token.lstrip().startswith(CALL_STARTS))


def probe_request(request: PromptRequest) -> PromptRequest:
    """The reply's own prompt, free of grammars, asking for the first token's top probabilities."""
    return replace(request, grammar=None, gate=False, probe_tokens=TOP_TOKENS, parse_tools=None, tool_choice="none")


def probe_options(options: ChatOptions) -> ChatOptions:
    return options.model_copy(update={"max_tokens": 1, "temperature": 0.0, "stop": None, "json_schema": None})


def gated(request: PromptRequest, p_call: float, threshold: float) -> PromptRequest:
    """The reply's request once the gate has read `p_call`: held to calls (the request's own grammar) at or above
    `threshold`, else to text that starts no call (a call the text goes on to write is still read)."""
    if p_call >= threshold:
        return replace(request, gate=False)
    return replace(request, gate=False, grammar=NO_CALL_GRAMMAR)
