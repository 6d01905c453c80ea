"""Parse where a bomb can be stopped: a child process with memory and CPU rlimits, killed at a deadline.

A parse in a thread cannot be stopped, and one that expands a bomb takes the whole server's memory with
it. Here each document is parsed by a fresh child (child.py, started ahead of time, so a parse does not
wait for an interpreter to start), which sets RLIMIT_AS and RLIMIT_CPU from the budget and charges the
budget as it goes; the host kills it when it runs past the wall-clock deadline. Small plain text, which
cannot expand, is parsed in this process.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from lector.retrieval.parsers import detect_format, parse_bytes
from lector.retrieval.parsers.base import DocumentError, ParsedDocument, Segment, content_hash
from lector.retrieval.parsers.budget import ParseBudget, memory_reason, time_reason
from lector.retrieval.parsers.child import peak_rss
from lector.tools.process_pool import spawn_python_child

CHILD_MODULE = "lector.retrieval.parsers.child"
KILL_GRACE = 1.0
"""Seconds past the budget's before the host kills a child that did not stop by itself."""
IN_PROCESS_FORMATS = ("txt", "md", "csv", "tsv")
IN_PROCESS_BYTES = 1_000_000


@dataclass
class ParseOutcome:
    """What one isolated parse gave: the document or the reason it was refused, its time and peak memory."""

    document: ParsedDocument | None
    error: DocumentError | None
    seconds: float
    peak_rss: int
    """Peak resident memory of the child, in bytes (0 when it died before it could say)."""


def parse_bounded(
    data: bytes, source: str, fmt: str | None = None, budget: ParseBudget | None = None, max_bytes: int | None = None
) -> ParsedDocument:
    """The parsed document, or DocumentError; risky formats are parsed in a child process."""
    kind = fmt or detect_format(source, data[:8192])
    if kind is None or (kind in IN_PROCESS_FORMATS and len(data) <= IN_PROCESS_BYTES):
        return parse_bytes(data, source, fmt, max_bytes=max_bytes, budget=budget)
    outcome = parse_in_child(data, source, fmt, budget or ParseBudget(), max_bytes)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.document is not None
    return outcome.document


def parse_in_child(
    data: bytes, source: str, fmt: str | None, budget: ParseBudget, max_bytes: int | None = None
) -> ParseOutcome:
    """Parse in a fresh child process within `budget`: the document, or the reason it was refused."""
    started = time.monotonic()
    child = _SPARES.take()
    request = {"source": source, "format": fmt, "max_bytes": max_bytes, "budget": dataclasses.asdict(budget)}
    try:
        child.send(json.dumps(request).encode() + b"\n", data)
        reply = child.reply(started + budget.seconds + KILL_GRACE)
    finally:
        child.reap()
    seconds = time.monotonic() - started
    if reply is None:
        return ParseOutcome(None, DocumentError(source, child.death_reason(budget)), seconds, child.peak_rss)
    header, text = reply
    peak = int(header.get("peak_rss", 0))
    if "error" in header:
        return ParseOutcome(None, DocumentError(source, str(header["error"])), seconds, peak)
    segments = [Segment(*s) for s in header["segments"]]
    document = ParsedDocument(content_hash(data), source, text, segments, str(header["format"]))
    return ParseOutcome(document, None, seconds, peak)


class _Child:
    """One parse's process: the request goes in on stdin, a JSON line and the text's UTF-8 come out."""

    def __init__(self) -> None:
        self.proc = spawn_python_child(CHILD_MODULE)
        self.timed_out = False
        self.status: int | None = None
        self.peak_rss = 0
        """Of a child that gave no reply: its peak memory when it was killed (0 if it died by itself)."""

    def send(self, header: bytes, data: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):  # a child that died is reported by its reply
            self.proc.stdin.write(header)
            self.proc.stdin.write(data)
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()

    def reply(self, deadline: float) -> tuple[dict[str, Any], str] | None:
        """The child's reply, or None when it died or ran past the deadline (it is killed then)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        blocks: list[bytes] = []
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            block = os.read(fd, 1 << 20)
            if not block:
                return _decode(b"".join(blocks))
            blocks.append(block)
        self.timed_out = True
        self.peak_rss = peak_rss(self.proc.pid)
        self.kill()
        return None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def reap(self) -> None:
        """Make sure the child has ended, and record how."""
        self.kill()
        with contextlib.suppress(OSError):
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.status = self.proc.wait(timeout=10)

    def death_reason(self, budget: ParseBudget) -> str:
        if self.timed_out or self.status == -signal.SIGXCPU:
            return time_reason(budget.seconds)
        if self.status is not None and self.status >= 0:
            return f"the parser process failed (exit status {self.status})"
        return memory_reason(budget.memory_bytes) + f" (the parser process was stopped by signal {-(self.status or 0)})"


def _decode(raw: bytes) -> tuple[dict[str, Any], str] | None:
    line, newline, text = raw.partition(b"\n")
    if not newline:
        return None
    try:
        header = json.loads(line)
    except ValueError:
        return None
    return (header, text.decode("utf-8", "surrogatepass")) if isinstance(header, dict) else None


class _Spares:
    """One child started ahead of time, so that a parse does not wait for an interpreter to start."""

    def __init__(self) -> None:
        self._spare: _Child | None = None
        self._lock = threading.Lock()

    def take(self) -> _Child:
        with self._lock:
            child, self._spare = self._spare, None
        if child is None or child.proc.poll() is not None:
            child = _Child()
        self.prestart()
        return child

    def prestart(self) -> None:
        threading.Thread(target=self._fill, name="parser-spare", daemon=True).start()

    def _fill(self) -> None:
        child = _Child()
        with self._lock:
            if self._spare is None:
                self._spare = child
                return
        child.kill()
        child.reap()

    def close(self) -> None:
        with self._lock:
            child, self._spare = self._spare, None
        if child is not None:
            child.kill()
            child.reap()


_SPARES = _Spares()
atexit.register(_SPARES.close)


def prestart() -> None:
    """Start the spare worker now (in the background), so that the first parse does not wait for it."""
    _SPARES.prestart()
