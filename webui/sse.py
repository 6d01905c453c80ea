"""Server-sent events framing."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from lector.llm.unicode import valid_json


def sse(data: BaseModel | dict[str, Any], event: str | None = None) -> bytes:
    """One event. Strings that are not valid Unicode (a lone surrogate from a model or a tool) are repaired, so one
    bad character cannot break the stream."""
    try:
        payload = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data, ensure_ascii=False)
        payload.encode()
    except (PydanticSerializationError, UnicodeEncodeError):
        plain = data.model_dump(mode="python") if isinstance(data, BaseModel) else data
        payload = json.dumps(valid_json(plain), ensure_ascii=False, default=str)
    kind = event or (data.get("type") if isinstance(data, dict) else getattr(data, "type", None))
    head = f"event: {kind}\n" if kind else ""
    return f"{head}data: {payload}\n\n".encode()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
