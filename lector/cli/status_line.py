"""One line of stderr on a terminal that says what is happening now, rewritten in place as it changes."""

from __future__ import annotations

from typing import TextIO

from lector.cli.terminal import printable

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
