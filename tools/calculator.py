"""The calculator tool (stub; being filled in)."""

from __future__ import annotations

from tools.base import tool


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: the expression, e.g. "2**10 + sqrt(16)".
    """
    raise NotImplementedError
