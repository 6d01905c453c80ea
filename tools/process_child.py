"""The child side of process_pool.py: run `module:function` calls from the host, one at a time.

Only the host writes to the child (a private pipe), so it may name any importable function.

Run as `python -m lector.tools.process_child`. Requests and replies are JSON lines on private copies
of fds 0 and 1; the real fd 1 then points at stderr, so a function that prints cannot corrupt them.
Before each call the CPU-time rlimit is set to the time used so far plus the call's allowance, so a
call the host fails to stop is still killed by the kernel.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
from collections.abc import Callable
from typing import Any


def _function(target: str) -> Callable[..., Any]:
    """The function named "module:name"; a tool object made from it (one that is not callable itself but
    names the function as `__wrapped__`) gives its function."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"not a 'module:function' target: {target!r}")
    fn = getattr(importlib.import_module(module), name)
    while not callable(fn) and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    if not callable(fn):
        raise ValueError(f"not a function: {target!r}")
    return fn


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request: {"value": ...} or {"error": message, "type": exception class name}."""
    try:
        _limit_cpu(float(request.get("cpu_seconds", 10)))
        fn = _function(str(request["target"]))
        return {"value": fn(*request.get("args", []), **request.get("kwargs", {}))}
    except Exception as exc:
        return {"error": str(exc), "type": type(exc).__name__}


def serve(requests: Any, replies: Any) -> None:
    for line in requests:
        reply = json.dumps(answer(json.loads(line)), ensure_ascii=True)
        replies.write(reply + "\n")
        replies.flush()


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(requests, replies)


if __name__ == "__main__":
    main()
