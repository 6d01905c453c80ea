"""Overhead of the sandboxed code interpreter per execution, side by side with a plain `python3 -c`.

    .venv/bin/python -m bench.sandbox [--runs 30]

Rows (each runs a trivial snippet):
- plain subprocess: `/usr/bin/python3 -I -c ...` (the interpreter the sandbox uses), no sandbox;
- sandboxed one-shot: the same command inside bwrap with all limits (no REPL worker);
- cold session: a new session (bwrap + REPL worker start) and its first call, then the kill;
- new conversation, pre-started worker: the same when the manager keeps a spare worker ready
  (the default), timing only the call (the spare is restarted in the background between calls);
- warm session call: one more call on a live session (a pipe round trip).
Target: at most 60 ms more than the plain subprocess.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lector.tools.code import sandbox
from lector.tools.code.manager import SessionManager
from lector.tools.code.sandbox import Limits, SandboxProcess

SNIPPET = "print(1 + 1)"


def measure(fn: Callable[[], None], runs: int) -> list[float]:
    fn()  # warm the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if sandbox.bwrap_path() is None:
        print(sandbox.INSTALL_HINT)
        return 1
    env_dir = sandbox.setup_env()
    python = sandbox.base_python()
    limits = Limits()

    def plain() -> None:
        subprocess.run([python, "-I", "-c", SNIPPET], check=True, capture_output=True)

    workroot = Path(tempfile.mkdtemp(prefix="lector-bench-"))
    workroot.chmod(0o711)
    oneshot_dir = sandbox.prepare_workdir(workroot / "oneshot")

    def oneshot() -> None:
        proc = SandboxProcess([python, "-I", "-c", SNIPPET], oneshot_dir, env_dir, limits)
        out, _ = proc.popen.communicate(timeout=30)
        assert out == b"2\n", out
        proc.kill()

    manager = SessionManager(limits, workroot=workroot, prewarm=False)
    counter = iter(range(10**9))

    def cold() -> None:
        key = f"cold{next(counter)}"
        result = manager.execute(key, SNIPPET)
        assert result.stdout == "2\n", result.content()
        manager._close(manager._sessions[key], None)

    prewarmed = SessionManager(limits, workroot=workroot / "pre", prewarm=True)
    spare_times: list[float] = []

    def new_conversation() -> None:
        assert prewarmed.wait_for_spare()
        started = time.perf_counter()
        key = f"new{next(counter)}"
        result = prewarmed.execute(key, SNIPPET)
        spare_times.append((time.perf_counter() - started) * 1000)
        assert result.stdout == "2\n", result.content()
        prewarmed._close(prewarmed._sessions[key], None)

    manager.execute("warm", SNIPPET)

    def warm() -> None:
        result = manager.execute("warm", SNIPPET)
        assert result.stdout == "2\n", result.content()

    rows = [
        ("plain subprocess (python3 -I -c)", measure(plain, args.runs)),
        ("sandboxed one-shot (bwrap + limits)", measure(oneshot, args.runs)),
        ("cold session (start + first call)", measure(cold, args.runs)),
        ("new conversation, pre-started worker", (measure(new_conversation, args.runs), spare_times[1:])[1]),
        ("warm session call", measure(warm, args.runs)),
    ]
    prewarmed.close()
    manager.close()
    shutil.rmtree(workroot, ignore_errors=True)
    base = statistics.median(rows[0][1])
    print(f"{args.runs} runs each of {SNIPPET!r}; milliseconds")
    print(f"{'':38} {'median':>8} {'p90':>8} {'mean':>8} {'extra vs plain':>15}")
    for name, times in rows:
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        extra = statistics.median(times) - base
        print(f"{name:38} {statistics.median(times):8.1f} {p90:8.1f} {statistics.mean(times):8.1f} {extra:+15.1f}")
    cold_extra = statistics.median(rows[2][1]) - base
    print(f"target: <= 60 ms extra; cold session {'meets' if cold_extra <= 60 else 'MISSES'} it ({cold_extra:+.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
