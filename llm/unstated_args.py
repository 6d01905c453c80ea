"""Optional arguments the conversation never gave, left out of a call so that the tool's own default applies.

A small model fills in every parameter it is shown: a unit, a language, a page size nobody asked for. An
optional argument (one its schema does not require) is left out of the call when

- its value is the default the schema declares: the tool does the same without it; or
- it is a string or a number that no message of the conversation states, and its schema gives the tool a
  default or a fixed set of values (`default`, `enum`): the model chose a value the person did not.

Required arguments, and values inside nested objects or lists, are kept as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lector.llm.messages import Message, ToolCall, ToolSpec

_WORDS = re.compile(r"[^\W_]+")


def conversation_text(messages: list[Message]) -> str:
    """What the person, the tools and the replies have said: every message but the system prompt, which holds the
    tool specs (and so every enum value)."""
    return "\n".join(m.content for m in messages if m.role != "system" and isinstance(m.content, str))


def without_unstated(calls: list[ToolCall], tools: list[ToolSpec] | None, stated: str) -> list[ToolCall]:
    """`calls` with the optional arguments that `stated` never gave left out (see the module's docstring)."""
    if not stated or not tools:
        return calls
    words = _normal(stated)
    schemas = {t.name: t.parameters for t in tools}
    return [_trimmed(call, schemas.get(call.name), words) for call in calls]


def _trimmed(call: ToolCall, schema: dict[str, Any] | None, stated_words: str) -> ToolCall:
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return call
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        return call
    if not isinstance(args, dict):
        return call
    required = set((schema or {}).get("required") or [])
    kept = {
        k: v
        for k, v in args.items()
        if k in required or not isinstance(props.get(k), dict) or not _unstated(v, props[k], stated_words)
    }
    if len(kept) == len(args):
        return call
    return call.model_copy(update={"arguments": json.dumps(kept, ensure_ascii=False)})


def _unstated(value: Any, prop: dict[str, Any], stated_words: str) -> bool:
    if "default" in prop and _same(value, prop["default"]):
        return True
    if "default" not in prop and not isinstance(prop.get("enum"), list):
        return False
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    shown = _normal(str(value))
    return bool(shown.strip()) and shown not in stated_words


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, str) and isinstance(default, str):
        return value.strip().casefold() == default.strip().casefold()
    return value == default and isinstance(value, bool) == isinstance(default, bool)


def _normal(text: str) -> str:
    """Lower-case words separated by single spaces, with a space at both ends (for whole-word matching)."""
    return " " + " ".join(_WORDS.findall(text.casefold())) + " "
