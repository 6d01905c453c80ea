"""Server-sent events framing."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


def sse(data: BaseModel | dict[str, Any], event: str | None = None) -> bytes:
    payload = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data, ensure_ascii=False)
    kind = event or (data.get("type") if isinstance(data, dict) else getattr(data, "type", None))
    head = f"event: {kind}\n" if kind else ""
    return f"{head}data: {payload}\n\n".encode()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
