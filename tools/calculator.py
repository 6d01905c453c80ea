"""The calculator tool: arithmetic.py's evaluator, run in a child process that a timeout really stops.

The evaluator refuses costly integer work before it starts (calc_limits.py); a step that slips past
its estimate still cannot hold the server: the child is killed at the deadline, and a warm child
serves the next call.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lector.tools.base import Tool, ToolContext, ToolResult
from lector.tools.calc_limits import WORK_BUDGET
from lector.tools.process_pool import ProcessPool, WorkerFailed, WorkerTimeout

SECONDS = 3.0
"""Wall-clock seconds one calculation may take in its child process."""
TARGET = "lector.tools.arithmetic:calculate"

POOL = ProcessPool()
"""Shared by every calculator: one warm process serves all conversations."""


class Calculator(Tool):
    name = "calculator"
    description = (
        "Evaluate an arithmetic expression exactly (integers) or to 15 significant digits (decimals). "
        "Supports + - * / // % ** and parentheses, the constants pi, e, tau, inf, and math functions "
        "such as sqrt, sin, cos, tan, log(x, base), log10, log2, exp, floor, ceil, factorial, comb, "
        "abs, round, min, max, hypot, degrees, radians. Angles are in radians."
    )
    timeout = SECONDS + 2.0

    class Args(BaseModel):
        expression: str = Field(description='the expression to evaluate, e.g. "2**10 + sqrt(16) * (3 - 1.5)".')

    def __init__(self, work_budget: float = WORK_BUDGET, seconds: float = SECONDS, pool: ProcessPool = POOL) -> None:
        """`work_budget`: the evaluator's cost limit per expression; `seconds`: the child's wall clock."""
        self.work_budget = work_budget
        self.seconds = seconds
        self.timeout = seconds + 2.0
        self.pool = pool

    async def run(self, args: Args, ctx: ToolContext) -> ToolResult | str:
        try:
            value = await self.pool.call(TARGET, args.expression, self.work_budget, timeout=self.seconds)
        except WorkerTimeout:
            return ToolResult.failure(
                f"Error: the calculation did not finish within {self.seconds:g} s and was stopped"
            )
        except WorkerFailed as exc:
            if exc.kind == "CalculatorError":
                return ToolResult.failure(f"Error: {exc}")
            return ToolResult.failure(f"Error: the calculation failed: {exc}")
        return str(value)


calculator = Calculator()
