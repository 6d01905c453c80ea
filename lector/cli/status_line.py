"""One line of stderr on a terminal that says what is happening now, rewritten in place as it changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TextIO

from lector.cli.terminal import printable
from lector.llm.backend import Backend, ChatOptions, Delta, WrappedBackend
from lector.llm.messages import Message, ToolSpec

CLEAR_LINE = "\r\x1b[2K"


class StatusLine:
    """Shows the latest `show(text)` on one line of `stream`; `clear()` erases it before other output. Off (does
    nothing) unless `stream` is a terminal."""

    def __init__(self, stream: TextIO, on: bool | None = None) -> None:
        self.stream = stream
        self.on = stream.isatty() if on is None else on
        self.shown = False

    def show(self, text: str) -> None:
        if self.on:
            self.stream.write(f"{CLEAR_LINE}{printable(text)}")
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.shown = False


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
