"""Module-level tools that run isolated in a child process, for test_isolated_tools.py (a child must import them)."""

from __future__ import annotations

from lector.tools.base import tool


@tool(isolated=True, timeout=2.0)
def modular_power(digits: int) -> str:
    """pow(3, 10**digits, 10**digits + 1): seconds of CPU in one C call for 3900 digits."""
    return str(pow(3, 10**digits, 10**digits + 1) % 1000)


@tool(isolated=True)
def add(a: int, b: int) -> dict[str, int]:
    """Add two numbers."""
    return {"sum": a + b}


@tool(isolated=True)
def refuse(reason: str) -> str:
    """Fail."""
    raise ValueError(reason)
