"""`lector chat`: a terminal chat with streaming answers and tools; `-q QUESTION` answers once and exits.

The answer text goes to stdout; tool calls, results and usage go to stderr, so `lector chat -q ... > out`
keeps only the answer.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from lector.cli.status_line import StatusLine, WritingRate, prompt_text
from lector.cli.terminal import printable
from lector.cli.threads_option import add_threads_option, apply_threads

DEFAULT_TOOLS = ["calculator"]
OPTIONAL_TOOLS = ["code_interpreter", "web_fetch"]
HELP = "Commands: /reset starts over, /tools lists the tools, /exit quits (or Ctrl-D). Ctrl-C stops answers."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="chat in the terminal with a model and its tools",
        description="Chat with a model that can call tools. Reads questions from stdin when it is not a "
        "terminal (one per line); -q answers one question and exits.",
    )
    parser.add_argument("--model", metavar="SPEC", help="model spec (default: $LECTOR_MODEL, else the 1.5B)")
    parser.add_argument(
        "--tools",
        metavar="NAMES",
        help="comma-separated tool names, or 'none' (default: calculator, plus code_interpreter and "
        "web_fetch when installed)",
    )
    parser.add_argument("--mcp-config", metavar="FILE", help='add the tools of MCP servers ({"mcpServers": ...})')
    parser.add_argument("-q", "--question", help="answer this one question and exit")
    parser.add_argument("--system", help="system prompt (default: a short built-in one)")
    parser.add_argument("--max-steps", type=int, default=8, help="model calls that may use tools per answer")
    parser.add_argument("--temperature", type=float, help="sampling temperature")
    add_threads_option(parser)
    parser.set_defaults(func=run)


def choose_tools(spec: str | None) -> list[Any]:
    """The named tools (an unknown name is an error), or else the default tools that are available."""
    from lector.agent.assistant import resolve_tool

    if spec is not None:
        names = [n.strip() for n in spec.split(",") if n.strip() and n.strip() != "none"]
        return [resolve_tool(n) for n in names]
    chosen = [resolve_tool(n) for n in DEFAULT_TOOLS]
    for name in OPTIONAL_TOOLS:
        try:
            chosen.append(resolve_tool(name))
        except (ValueError, ImportError):
            pass
    return chosen


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(printable(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Printer:
    """Writes events: answer text to `out`, everything else to `err` (dimmed on a terminal). On a terminal, a
    status line says what the model is doing (a step, a tool, reading the prompt) with a running clock until it
    writes, and how fast it wrote; `tick` is how often the clock is repainted (None: only on events)."""

    def __init__(self, out: TextIO, err: TextIO, tick: float | None = 0.5) -> None:
        self.out, self.err = out, err
        self.color = err.isatty()
        self.at_line_start = True
        self.started = time.monotonic()
        self.status = StatusLine(err, started=self.started, tick=tick)
        self.rate = WritingRate()

    def note(self, line: str) -> None:
        self.status.clear()
        if not self.at_line_start:
            self.out.write("\n")
            self.out.flush()
            self.at_line_start = True
        self.err.write(f"\033[2m{line}\033[0m\n" if self.color else line + "\n")
        self.err.flush()

    def show(self, event: Any) -> None:
        from lector.agent.events import (
            CallRetried,
            ErrorEvent,
            Final,
            PromptProgress,
            StepStarted,
            TextDelta,
            ToolCallFinished,
            ToolCallStarted,
        )

        if isinstance(event, PromptProgress) and self.at_line_start:
            self.status.show(prompt_text(event.done, event.total))
        elif isinstance(event, StepStarted) and self.at_line_start:
            self.status.show("writing the answer…" if event.final else f"thinking (step {event.step})…")
        elif isinstance(event, TextDelta):
            self.status.clear()
            self.rate.piece()
            self.out.write(printable(event.text))
            self.out.flush()
            self.at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            self.note(f"  → {event.name} {_short(event.arguments, 200)}")
            self.status.show(f"running {event.name}…")
        elif isinstance(event, ToolCallFinished):
            mark = "error: " if event.error else ""
            extra = f", {len(event.images)} image(s)" if event.images else ""
            self.note(f"  ← {mark}{_short(event.content)}  ({event.elapsed:.2f} s{extra})")
        elif isinstance(event, CallRetried):
            self.note(f"  ✗ {printable(event.describe())}")
        elif isinstance(event, ErrorEvent):
            self.note(f"error: {printable(event.message)}")
        elif isinstance(event, Final):
            elapsed = time.monotonic() - self.started
            why = {"budget": " · step budget reached", "cancelled": " · stopped", "error": " · failed"}
            rate = self.rate.per_second()
            speed = f" · {rate:.1f} tok/s" if rate is not None else ""
            self.note(
                f"  [{event.steps} step(s) · {event.usage.prompt_tokens} prompt + "
                f"{event.usage.completion_tokens} completion tokens · {elapsed:.1f} s{speed}"
                f"{why.get(event.stopped_reason, '')}]"
            )

    def close(self) -> None:
        self.status.close()


def answer(bot: Any, question: str, out: TextIO, err: TextIO) -> bool:
    """Stream one answer; True when it ended without an error. Ctrl-C stops the answer, not the chat."""
    from lector.agent.events import Final

    printer = Printer(out, err)
    ok = False
    stream = bot.stream(question)
    try:
        for event in stream:
            printer.show(event)
            if isinstance(event, Final):
                ok = event.stopped_reason != "error"
    except KeyboardInterrupt:
        stream.close()
        printer.note("  [stopped]")
    finally:
        printer.close()
    return ok


def run(args: argparse.Namespace) -> int:
    from lector.agent.assistant import Assistant
    from lector.llm.backend import ChatOptions
    from lector.llm.errors import LLMError
    from lector.llm.factory import is_embedded

    apply_threads(args)
    try:
        tools = choose_tools(args.tools)
    except (ValueError, ImportError) as exc:
        print(f"lector chat: {exc}", file=sys.stderr)
        return 2
    hub = None
    if args.mcp_config:
        from lector.cli.mcp_config_option import open_mcp_tools

        hub, mcp = open_mcp_tools(args.mcp_config, "lector chat")
        tools += mcp
    options = ChatOptions(temperature=args.temperature) if args.temperature is not None else None
    bot = Assistant(args.model, tools=tools, system=args.system, max_steps=args.max_steps, options=options)
    try:
        if sys.stderr.isatty() and is_embedded(args.model):
            print("loading the model…", file=sys.stderr, flush=True)
        backend = bot.backend
        if sys.stderr.isatty() and backend.runtime():
            print(f"{backend.name}: {backend.runtime()}", file=sys.stderr, flush=True)
    except (LLMError, ValueError) as exc:
        print(f"lector chat: {exc}", file=sys.stderr)
        return 2
    try:
        if args.question is not None:
            return 0 if answer(bot, args.question, sys.stdout, sys.stderr) else 1
        return 0 if chat(bot, backend.name) else 1
    finally:
        backend.close()
        if hub is not None:
            hub.close()


def chat(bot: Any, model_name: str) -> bool:
    """Questions from the terminal (or one per stdin line) until /exit or end of input."""
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401 -- line editing and history for input()
        except ImportError:
            pass
        print(f"{model_name} · tools: {', '.join(bot.tool_names) or 'none'}", file=sys.stderr)
        print(HELP, file=sys.stderr)
    ok = True
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and not line:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/exit", "/quit"):
            break
        if question == "/reset":
            bot.reset()
            print("(new conversation)", file=sys.stderr)
            continue
        if question == "/tools":
            print(", ".join(bot.tool_names) or "none", file=sys.stderr)
            continue
        if question in ("/help", "/?"):
            print(HELP, file=sys.stderr)
            continue
        ok = answer(bot, question, sys.stdout, sys.stderr) and ok
    return ok
