"""The child side of isolated.py: read one request, parse it within its budget, reply, exit.

Run as `python -m lector.retrieval.parsers.child`. The request is a JSON line (source, format, budget)
and the document's bytes on stdin; the reply is a JSON line (format and segments, or the reason for a
refusal) and the text's UTF-8 on a private copy of stdout. The rlimits are set after the interpreter and
the parsers are loaded: the address space may grow by the budget's memory, the CPU time by its seconds.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any, BinaryIO

from lector.retrieval.parsers import DocumentError, ParseBudget, parse_bytes
from lector.retrieval.parsers.budget import memory_reason

CPU_GRACE = 1


def _warm() -> None:
    """Load what parsing needs before the request comes, so the parse does not wait for imports."""
    import lxml.etree  # noqa: F401
    import lxml.html  # noqa: F401
    import pypdf  # noqa: F401

    import lector.retrieval.parsers.pdf  # noqa: F401
    import lector.retrieval.parsers.sheets  # noqa: F401
    import lector.retrieval.parsers.slides  # noqa: F401
    import lector.retrieval.parsers.word  # noqa: F401


def _limit(budget: ParseBudget) -> None:
    try:
        with open("/proc/self/statm") as statm:
            address_space = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # no /proc (not Linux): the deadline and the CPU limit still hold
        address_space = 0
    if address_space:
        _lower(resource.RLIMIT_AS, address_space + budget.memory_bytes, 0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _lower(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime + budget.seconds) + CPU_GRACE, CPU_GRACE)


def _lower(kind: int, soft: int, margin: int) -> None:
    """Set the limit to `soft` (the hard one `margin` above it), never above a hard limit set from outside."""
    _, hard = resource.getrlimit(kind)
    ceiling = hard if hard != resource.RLIM_INFINITY else soft + margin
    resource.setrlimit(kind, (min(soft, ceiling), min(soft + margin, ceiling)))


def peak_rss(pid: int | str = "self") -> int:
    """A process's peak resident memory in bytes (VmHWM: unlike ru_maxrss, not inherited across fork and exec)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def answer(request: dict[str, Any], data: bytes) -> tuple[dict[str, Any], str]:
    budget = ParseBudget(**request["budget"])
    _limit(budget)
    source = str(request["source"])
    try:
        doc = parse_bytes(data, source, request.get("format"), request.get("max_bytes"), budget)
    except DocumentError as exc:
        return {"error": exc.reason}, ""
    except MemoryError:
        return {"error": memory_reason(budget.memory_bytes)}, ""
    except Exception as exc:  # a parser's own failure is reported, not a crash
        if "memory" in str(exc).lower():
            return {"error": memory_reason(budget.memory_bytes)}, ""
        return {"error": f"the parser failed: {type(exc).__name__}: {exc}"[:300]}, ""
    return {"format": doc.format, "segments": [list(s) for s in doc.segments]}, doc.text


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    replies: BinaryIO = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _warm()
    requests = sys.stdin.buffer
    request = json.loads(requests.readline())
    header, text = answer(request, requests.read())
    header["peak_rss"] = peak_rss()
    replies.write(json.dumps(header).encode() + b"\n")
    replies.write(text.encode("utf-8", "surrogatepass"))
    replies.flush()


if __name__ == "__main__":
    main()
