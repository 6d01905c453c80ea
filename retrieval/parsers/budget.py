"""What one parse may spend: seconds, memory, expanded bytes and characters of text; past it, a plain reason."""

from __future__ import annotations

import time
from dataclasses import dataclass

from lector.retrieval.parsers.base import DocumentError

MB = 1_000_000
TIME_CHECK_EVERY = 256
"""Calls to Meter.tick between two looks at the clock."""


@dataclass(frozen=True)
class ParseBudget:
    """Limits of one parse. The seconds and memory are enforced on the child process that parses (isolated.py)."""

    seconds: float = 30.0
    memory_bytes: int = 1_500 * MB
    """Address space the parse may add to the worker's interpreter."""
    max_chars: int = 64_000_000
    """Characters of text the document may produce."""
    max_expanded_bytes: int = 250 * MB
    """Bytes all compressed parts read together may expand to."""
    max_ratio: float = 100.0
    """How many times its compressed size one part may expand to, once it is past `ratio_floor_bytes`."""
    ratio_floor_bytes: int = MB


def megabytes(n: float) -> str:
    return f"{n / MB:,.1f}".removesuffix(".0")


class Meter:
    """Charges one parse's work against its budget and raises DocumentError, with the reason, past it."""

    def __init__(self, source: str, budget: ParseBudget) -> None:
        self.source = source
        self.budget = budget
        self.started = time.monotonic()
        self.chars = 0
        self.expanded = 0
        self._ticks = 0

    def refuse(self, reason: str) -> DocumentError:
        return DocumentError(self.source, reason)

    def tick(self) -> None:
        """Count one step of work; every few steps, stop the parse if it ran out of time."""
        self._ticks += 1
        if self._ticks % TIME_CHECK_EVERY == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() - self.started > self.budget.seconds:
            raise self.refuse(time_reason(self.budget.seconds))

    def add_chars(self, n: int) -> None:
        self.chars += n
        if self.chars > self.budget.max_chars:
            raise self.refuse(f"produces more than {self.budget.max_chars:,} characters of text")
        self.tick()

    def add_expanded(self, n: int) -> None:
        self.expanded += n
        if self.expanded > self.budget.max_expanded_bytes:
            raise self.refuse(expands_reason(self.budget.max_expanded_bytes))
        self.tick()

    def expanded_left(self) -> int:
        return self.budget.max_expanded_bytes - self.expanded


def time_reason(seconds: float) -> str:
    return f"parsing stopped after {seconds:g} s (the time limit)"


def expands_reason(limit: int) -> str:
    return f"expands to more than {megabytes(limit)} MB"


def memory_reason(limit: int) -> str:
    return f"needs more than {megabytes(limit)} MB of memory to parse"
