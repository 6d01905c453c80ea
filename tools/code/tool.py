"""The `code_interpreter` tool: stateful Python sessions, each in its own bubblewrap sandbox.

The pieces: sandbox.py (the bubblewrap jail and its limits), kernel.py (the REPL inside it), wire.py
(the host's side of its protocol), session.py (one kernel and its work folder), files.py (files in and
out of the work folder), manager.py (sessions by conversation), execution.py (what a call produced).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, Field

from lector.tools.base import Tool, ToolContext, ToolResult
from lector.tools.code import sandbox
from lector.tools.code.manager import SessionManager
from lector.tools.code.sandbox import Limits, SandboxUnavailable
from lector.tools.code.session import KILL_GRACE


class CodeInterpreter(Tool):
    name = "code_interpreter"
    description = (
        "Run Python code in a sandboxed, stateful session, like a Jupyter notebook: variables, imports "
        "and files persist between calls in this conversation. numpy, pandas and matplotlib are "
        "available; there is no network. Files attached to the conversation are in the current folder. "
        "The value of the last expression is shown; print() anything else you need. Matplotlib figures "
        "are shown to the user as images."
    )

    class Args(BaseModel):
        code: str = Field(description="Python code to run.")

    def __init__(
        self,
        limits: Limits | None = None,
        idle_timeout: float = 900.0,
        workroot: Path | None = None,
        env_dir: Path | None = None,
    ) -> None:
        self.manager = SessionManager(limits, idle_timeout, workroot, env_dir)
        lim = self.manager.limits
        self.timeout = lim.timeout + KILL_GRACE + lim.startup_timeout + 10

    async def run(self, args: Args, ctx: ToolContext) -> ToolResult:
        if sandbox.bwrap_path() is None:
            return ToolResult.failure(f"Error: {sandbox.INSTALL_HINT}")
        try:
            result = await asyncio.to_thread(
                self.manager.execute, ctx.conversation_id, args.code, list(ctx.attachments)
            )
        except SandboxUnavailable as exc:
            return ToolResult.failure(f"Error: {exc}")
        return ToolResult(
            content=result.content(),
            error=bool(result.error),
            images=result.images,
            files=[str(p) for p in result.files],
            source="code_interpreter (sandboxed Python)",
        )

    def close(self) -> None:
        self.manager.close()
