"""The host's side of the kernel's wire protocol (tools/code/kernel.py describes the kernel's side).

A request goes to the kernel's stdin as its length, a newline and marshal data; the answer comes back as
one JSON line on its stdout. Everything else the sandbox writes arrives on stderr (the raw output) and is
read alongside, capped, and kept with the answer.
"""

from __future__ import annotations

import json
import marshal
import os
import selectors
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

MAX_ANSWER_BYTES = 48 << 20
DISK_CHECK_INTERVAL = 0.5
"""Seconds between checks of the work folder's quota while a cell runs."""


def encode_request(request: dict[str, Any]) -> bytes:
    payload = marshal.dumps(request)
    return b"%d\n" % len(payload) + payload


@dataclass
class Reply:
    """What came back for one request: the kernel's answer, or why there is none, and the raw output."""

    answer: dict[str, Any] | None
    failure: str = ""
    """Why there is no answer: "timeout", "died", "output", "disk" or "bad reply"."""
    raw: bytes = b""
    """The first bytes of the raw output."""
    raw_dropped: int = 0
    """Bytes of raw output past those kept."""


@dataclass
class RawLimits:
    keep: int
    """Bytes of raw output kept for the answer."""
    most: int
    """Bytes of raw output past which the exchange fails with "output"."""


def exchange(
    popen: subprocess.Popen[bytes],
    outgoing: bytes,
    deadline: float,
    raw_limits: RawLimits,
    over_quota: Callable[[], bool] | None = None,
) -> Reply:
    """Send `outgoing` (may be empty) and wait for one answer until `deadline` (time.monotonic()).

    `over_quota`, when given, is asked now and then whether the work folder grew too big ("disk").
    """
    return _Exchange(popen, outgoing, raw_limits).run(deadline, over_quota)


class _Exchange:
    def __init__(self, popen: subprocess.Popen[bytes], outgoing: bytes, raw_limits: RawLimits) -> None:
        assert popen.stdout is not None and popen.stderr is not None and popen.stdin is not None
        self.answers: IO[bytes] = popen.stdout
        self.raw: IO[bytes] = popen.stderr
        self.requests: IO[bytes] = popen.stdin
        self.pending = memoryview(outgoing)
        self.limits = raw_limits
        self.buffer = bytearray()
        self.raw_kept = bytearray()
        self.raw_total = 0

    def run(self, deadline: float, over_quota: Callable[[], bool] | None) -> Reply:
        next_check = time.monotonic() + DISK_CHECK_INTERVAL
        with selectors.DefaultSelector() as sel:
            sel.register(self.answers, selectors.EVENT_READ, self._read_answer)
            sel.register(self.raw, selectors.EVENT_READ, self._read_raw)
            if self.pending:
                os.set_blocking(self.requests.fileno(), False)
                sel.register(self.requests, selectors.EVENT_WRITE, self._write_request)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return self._failed("timeout")
                if over_quota is not None and now >= next_check:
                    next_check = now + DISK_CHECK_INTERVAL
                    if over_quota():
                        return self._failed("disk")
                for key, _ in sel.select(timeout=min(DISK_CHECK_INTERVAL, deadline - now)):
                    reply = key.data(sel)
                    if reply is not None:
                        return reply

    def _failed(self, why: str) -> Reply:
        return Reply(None, why, bytes(self.raw_kept), self.raw_total - len(self.raw_kept))

    def _write_request(self, sel: selectors.BaseSelector) -> Reply | None:
        try:
            self.pending = self.pending[os.write(self.requests.fileno(), self.pending) :]
        except BlockingIOError:
            return None
        except OSError:
            return self._failed("died")
        if not self.pending:
            sel.unregister(self.requests)
        return None

    def _read_raw(self, sel: selectors.BaseSelector) -> Reply | None:
        chunk = os.read(self.raw.fileno(), 1 << 16)
        if not chunk:
            sel.unregister(self.raw)
            return None
        self.raw_total += len(chunk)
        room = self.limits.keep - len(self.raw_kept)
        if room > 0:
            self.raw_kept += chunk[:room]
        return self._failed("output") if self.raw_total > self.limits.most else None

    def _read_answer(self, sel: selectors.BaseSelector) -> Reply | None:
        chunk = os.read(self.answers.fileno(), 1 << 16)
        if not chunk:
            return self._failed("died")
        self.buffer += chunk
        if len(self.buffer) > MAX_ANSWER_BYTES:
            return self._failed("output")
        if b"\n" not in self.buffer:
            return None
        try:
            answer = json.loads(bytes(self.buffer[: self.buffer.index(b"\n")]))
        except ValueError:
            return self._failed("bad reply")
        if not isinstance(answer, dict):
            return self._failed("bad reply")
        return Reply(answer, "", bytes(self.raw_kept), self.raw_total - len(self.raw_kept))


def drain_raw(popen: subprocess.Popen[bytes]) -> None:
    """Discard raw output that background processes wrote between calls."""
    assert popen.stderr is not None
    fd = popen.stderr.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        for _ in range(64):
            if not sel.select(timeout=0) or not os.read(fd, 1 << 16):
                break
