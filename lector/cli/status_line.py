"""One line of stderr on a terminal that says what is happening now, rewritten in place as it changes."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import TextIO

from lector.cli.terminal import printable
from lector.llm.backend import Backend, ChatOptions, Delta, WrappedBackend
from lector.llm.messages import Message, ToolSpec

CLEAR_LINE = "\r\x1b[2K"


class StatusLine:
    """Shows the latest `show(text)` on one line of `stream`; `clear()` erases it before other output. Off (does
    nothing) unless `stream` is a terminal.

    With `started` (a time.monotonic() value) the line ends in the seconds since then, and with `tick` it is
    repainted that often (in a daemon thread) while it is shown, so the clock runs while nothing else happens."""

    def __init__(
        self, stream: TextIO, on: bool | None = None, started: float | None = None, tick: float | None = None
    ) -> None:
        self.stream = stream
        self.on = stream.isatty() if on is None else on
        self.shown = False
        self.started = started
        self.tick = tick
        self.text = ""
        self.lock = threading.Lock()
        self.ticker: threading.Thread | None = None
        self.closed = threading.Event()

    def show(self, text: str) -> None:
        if not self.on:
            return
        with self.lock:
            self.text = text
            self._paint()
            self.shown = True
        if self.tick is not None and self.started is not None and self.ticker is None:
            self.ticker = threading.Thread(target=self._run_clock, name="lector-status", daemon=True)
            self.ticker.start()

    def _paint(self) -> None:
        line = self.text if self.started is None else f"{self.text} · {time.monotonic() - self.started:.1f} s"
        self.stream.write(f"{CLEAR_LINE}{printable(line)}")
        self.stream.flush()

    def _run_clock(self) -> None:
        assert self.tick is not None
        while not self.closed.wait(self.tick):
            with self.lock:
                if self.shown:
                    self._paint()

    def clear(self) -> None:
        with self.lock:
            if self.shown:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
                self.shown = False

    def close(self) -> None:
        """Erase the line and stop its clock."""
        self.closed.set()
        self.clear()


class WritingRate:
    """How fast an answer is written: pieces per second, counting only the time spent writing (a pause longer
    than `gap` seconds is the model reading a prompt or a tool running). Each piece is about one token."""

    def __init__(self, gap: float = 1.5) -> None:
        self.gap = gap
        self.last = 0.0
        self.writing = 0.0
        self.pieces = 0

    def piece(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.last and now - self.last < self.gap:
            self.writing += now - self.last
            self.pieces += 1
        self.last = now

    def per_second(self) -> float | None:
        """Pieces per second, or None before there is a third of a second of writing to tell by."""
        return self.pieces / self.writing if self.writing > 0.3 else None


def passages_text(first: int, last: int, total: int, sources: list[str]) -> str:
    """ "reading passage 3 of 8 (keeper.txt)", or "reading passages 1–4 of 8" for a wave read at once."""
    which = f"passage {first}" if first == last else f"passages {first}–{last}"
    names = [s.rstrip("/").rsplit("/", 1)[-1] for s in sources]
    where = f" ({names[0]})" if len(names) == 1 else f" ({len(names)} documents)" if names else ""
    return f"reading {which} of {total}{where}…"


def prompt_text(done: int, total: int) -> str:
    """ "reading the prompt 40%": how far the model has read a long prompt before it writes."""
    return f"reading the prompt {round(100 * done / max(1, total))}%…"


class PromptShown(WrappedBackend):
    """`inner`, showing on `status` how far it has read each long prompt."""

    def __init__(self, inner: Backend, status: StatusLine) -> None:
        super().__init__(inner)
        self.status = status

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        async for delta in self.inner.astream(messages, tools, options):
            if delta.prompt_read is not None:
                self.status.show(prompt_text(delta.prompt_read.done, delta.prompt_read.total))
            yield delta
