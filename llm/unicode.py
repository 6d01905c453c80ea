"""Text that is valid Unicode everywhere it goes: lone surrogates (which a model, a tool or a JSON escape
such as "\\ud800" can produce) become U+FFFD, and a valid surrogate pair becomes the character it encodes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def valid_json(value: Any) -> Any:
    """`value` with every string in it (keys included) made valid; other values are returned as they are."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_json(k): valid_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [valid_json(v) for v in value]
    return value


ValidText = Annotated[str, BeforeValidator(lambda v: valid_text(v) if isinstance(v, str) else v)]
"""A pydantic string field that repairs invalid Unicode instead of refusing it (a browser's JSON.stringify
writes a lone surrogate from a page's text as "\\ud800")."""
