"""Whether a call's required values come from the conversation, for calls a model makes unasked (tool_choice 'auto').

A small model asked to "find me a salon" calls `find_provider(city="Los Angeles, CA")`: the tool needs a city, the
user gave none, and the model made one up. The call would run on an invented value and the answer would read as
if the user had asked for it. So in 'auto' a call is held back when a required argument is a short name or phrase
of which no word occurs anywhere in the conversation (the user's words, earlier replies, tool results); the reply
asks the user for it instead (`missing_note`).

A placeholder (`your_username`, `<city>`, `null`) for a required argument is missing too, unless the user wrote it,
and so is an address or path with one in it (`https://api.example.com/v1/<ip_address>`, `/path/to/file.txt`):
nothing can be fetched there. An email address the conversation does not hold is missing too: a message must not
go to an address the model made up.
Otherwise only names are judged: a string of a few words with a capital letter ("Los Angeles, CA", "The Matrix"),
which the user would have had to give. A value is let through when it is not a string, is one of the schema's
choices (an enum), has no capital letter, runs past a few words or holds the marks of an expression or of code, or
is an argument whose name says the model composes it (a query, a message, code); when it reads as a date or time
(the model works those out from "next Thursday") or is a code (`GB`, `AAPL`, `en-US`: a translation of the user's
words); and when the user's messages or the value are written in a script other than Latin, where words cannot be
matched without a tokenizer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lector.llm.messages import Message, ToolCall, ToolSpec

MAX_WORDS = 4
"""Longer values are text the model composes, not a name it should have been given."""
STEM = 4
"""Two words that agree on this many leading letters count as one ("salon" / "salons", "Philly" / "Philadelphia")."""

_WORD = re.compile(r"\w+")
_DATE_OR_TIME = re.compile(r"\d{1,4}(?:[-/.:T ]\d{1,4})+(?:[.:]\d+)?Z?(?:\s*[AaPp]\.?[Mm]\.?)?")
_CODE_MARKS = re.compile(r"[()\[\]{}<>=*+\"\\|;$^~`]")
"""Characters of an expression, code or markup (what the model composes), which names of things do not hold."""
_FUNCTION_WORDS = frozenset("the and for with from into onto this that los las les der die das del des une".split())
"""Words that occur in any sentence, so a value sharing only them with the conversation shares nothing."""
_PLACEHOLDER = re.compile(
    r"(?:your|enter|insert)[ _-]?\w+|<[^<>]*>|\[[^\[\]]*\]|null|none|nil|undefined|unknown|tbd|placeholder|x{3,}|\.{3}",
    re.IGNORECASE,
)
"""What a model writes where it has no value: `your_username`, `<city>`, `null`."""
_ADDRESS = re.compile(r"(?:https?|wss?|ftp)://\S+|/?path/to/\S+", re.IGNORECASE)
_ADDRESS_PLACEHOLDER = re.compile(
    r"<[^<>/]+>|\{[^{}/]+\}|(?:your|enter|insert)[_-]\w+|(?<![\w-])example\.(?:com|org|net)\b|^/?path/to/",
    re.IGNORECASE,
)
"""What stands in for a part of an address or path the model did not know: `<ip_address>`, `{id}`, `YOUR_KEY`,
`api.example.com`, `/path/to/`."""
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_COMPOSED = re.compile(
    r"query|question|prompt|text|message|content|code|command|expression|keyword|search|description|body|instruction"
    r"|comment|note|summary|title",
    re.IGNORECASE,
)
"""Parameter names of text the model writes (a search, a message, code), not a value the user must supply."""
_CODE = re.compile(r"[A-Z]{2,5}|[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?")


@dataclass(frozen=True)
class Missing:
    """A required argument whose value the conversation never gave."""

    tool: str
    parameter: str
    description: str


def ungrounded(calls: Sequence[ToolCall], tools: Sequence[ToolSpec], conversation: Sequence[Message]) -> list[Missing]:
    """The required arguments of `calls` that hold a value no word of `conversation` supports."""
    if not all(_latin(m.content) for m in conversation if m.role == "user"):
        return []
    said = _Said.of("\n".join(m.content for m in conversation))
    specs = {t.name: t for t in tools}
    return [m for call in calls if call.name in specs for m in _missing_in(call, specs[call.name], said)]


def _missing_in(call: ToolCall, spec: ToolSpec, said: _Said) -> list[Missing]:
    try:
        args = call.parsed_arguments()
    except ValueError:  # arguments that are not JSON go to the tool's validation
        return []
    props = spec.parameters.get("properties")
    if not isinstance(args, dict) or not isinstance(props, dict):
        return []
    missing: list[Missing] = []
    for name in spec.parameters.get("required") or []:
        prop = props.get(name)
        prop = prop if isinstance(prop, dict) else {}
        if isinstance(name, str) and _unsupplied(name, args.get(name), prop, said):
            missing.append(Missing(call.name, name, str(prop.get("description") or "").strip()))
    return missing


def missing_note(missing: Sequence[Missing]) -> str:
    """The reply in place of calls on invented values: what is needed, and for what."""
    asks = [f"`{m.parameter}`" + (f" ({m.description.rstrip('.')})" if m.description else "") for m in missing]
    tools = ", ".join(dict.fromkeys(f"`{m.tool}`" for m in missing))
    return f"To use {tools} I need a value you have not given yet: {'; '.join(asks)}. What should I use?"


def _unsupplied(name: str, value: Any, prop: dict[str, Any], said: _Said) -> bool:
    if isinstance(value, str) and "enum" not in prop:
        text = value.strip()
        if _PLACEHOLDER.fullmatch(text):
            return not _words(text) <= said.words
        if _ADDRESS.fullmatch(text) and any(not _words(p) <= said.words for p in _ADDRESS_PLACEHOLDER.findall(text)):
            return True
        if _EMAIL.fullmatch(text):
            return text.casefold() not in said.text
    return not _COMPOSED.search(name) and _judged(value, prop) and not _supported(value, said)


def _judged(value: Any, prop: dict[str, Any]) -> bool:
    if not isinstance(value, str) or "enum" in prop or not any(c.isalpha() for c in value):
        return False
    value, words = value.strip(), _WORD.findall(value)
    if len(words) > MAX_WORDS or _CODE_MARKS.search(value):
        return False
    if _DATE_OR_TIME.fullmatch(value) or _CODE.fullmatch(value) or not _latin(value):
        return False
    return any(w[0].isupper() for w in words)


def _supported(value: str, said: _Said) -> bool:
    """Some word of `value` was said, or its initials were ("LA", "NYC"), or the whole of it ("mc donalds")."""
    words = _words(value)
    for word in {w for w in words if len(w) > 2 and w not in _FUNCTION_WORDS} or words:
        if word in said.words or (len(word) >= STEM and any(s.startswith(word[:STEM]) for s in said.words)):
            return True
    initials = "".join(w[0] for w in _WORD.findall(value) if w[0].isupper() and not w.isupper()).casefold()
    if len(initials) >= 2 and any(s.startswith(initials) for s in said.words):
        return True
    return _letters_only(value) in said.letters


@dataclass(frozen=True)
class _Said:
    words: set[str]
    letters: str
    """Every letter and digit of the conversation run together, for a value said with other spacing."""
    text: str
    """The conversation case-folded, for a value that must occur as written (an email address)."""

    @classmethod
    def of(cls, text: str) -> _Said:
        return cls(_words(text), _letters_only(text), text.casefold())


def _letters_only(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def _latin(text: str) -> bool:
    """Every letter of `text` is a Latin one (accents allowed)."""
    return text.isascii() or all("LATIN" in unicodedata.name(c, "") for c in text if c.isalpha())
