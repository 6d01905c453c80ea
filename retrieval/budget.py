"""A budget for one reading: model calls, tokens and seconds, counted from when it is set on the meter.

Level 3 sets one on its meter; every loop that makes model calls (the planner, Level 2's waves of reads)
asks `spent()` before its next call and stops when it says why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pydantic import BaseModel


class Budget(BaseModel):
    max_calls: int | None = None
    max_tokens: int | None = None
    """Prompt plus completion tokens."""
    max_seconds: float | None = None


@dataclass
class Limit:
    """A budget and where the meter stood when it was set."""

    budget: Budget
    calls_before: int
    tokens_before: int
    started: float = field(default_factory=time.perf_counter)

    def spent(self, calls: int, tokens: int) -> str:
        """Why the budget is spent, or '' while it is not."""
        b = self.budget
        if b.max_calls is not None and calls - self.calls_before >= b.max_calls:
            return f"the budget of {b.max_calls} model calls is spent"
        if b.max_tokens is not None and tokens - self.tokens_before >= b.max_tokens:
            return f"the budget of {b.max_tokens} tokens is spent"
        if b.max_seconds is not None and time.perf_counter() - self.started >= b.max_seconds:
            return f"the budget of {b.max_seconds:g} seconds is spent"
        return ""
