"""Run CPU-bound functions in warm child processes, where a timeout really stops the work.

A thread cannot be stopped, and one long C-level step (a big-integer power) holds the GIL, so the
whole server, event loop included, waits for it. A child process can be killed. The pool keeps a few
children started (a warm call costs a pipe round trip), gives each call an idle child or starts one,
and SIGKILLs the child whose call runs past its deadline or whose caller is cancelled; a fresh child
is started in the background to take its place. The child side is process_child.py.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

CHILD_MODULE = "lector.tools.process_child"
PACKAGE_ROOT = Path(__file__).absolute().parents[2]
"""The folder holding the `lector` package (through the layer symlinks, not resolved)."""
WAITING_THREADS = 32
"""Threads that wait on children's pipes: the pool's own, so waiting calls never fill asyncio's default executor."""
CPU_GRACE = 1.0
"""CPU seconds past a call's deadline before the child's own rlimit kills it (if the host could not)."""


class WorkerTimeout(Exception):
    """The call ran past its deadline; its process was killed."""


class WorkerFailed(Exception):
    """The call raised in the child (`kind` is the exception's class name) or the child died."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def _child_env() -> dict[str, str]:
    """The host's environment, with its import path: the child finds the modules the host imported."""
    env = dict(os.environ)
    paths = [str(PACKAGE_ROOT), *filter(None, sys.path), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def spawn_python_child(module: str) -> subprocess.Popen[bytes]:
    """`python -m module` in its own session (a Ctrl-C at the terminal is the host's to handle), talking over
    stdin/stdout, with the host's import path."""
    return subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_child_env(),
        close_fds=True,
        start_new_session=True,
    )


class _Child:
    """One child process and the unread part of its replies."""

    def __init__(self) -> None:
        self.proc = spawn_python_child(CHILD_MODULE)
        self.pid = self.proc.pid
        self._buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, line: bytes, deadline: float) -> dict[str, Any] | None:
        """Send one request; its reply, or None past the deadline. Raises WorkerFailed if the child dies."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None
        reply = self._read_line(deadline)
        if reply is None:
            return None
        try:
            answer = json.loads(reply)
        except ValueError:
            raise WorkerFailed("the worker process sent a corrupted reply") from None
        if not isinstance(answer, dict):
            raise WorkerFailed("the worker process sent a corrupted reply")
        return answer

    def _read_line(self, deadline: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._died()
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _died(self) -> WorkerFailed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)
        code = self.proc.returncode
        how = f" (killed by signal {-code})" if code is not None and code < 0 else f" (exit status {code})"
        return WorkerFailed("the worker process died" + how + ", probably a CPU-time or memory limit")

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


class ProcessPool:
    """Warm child processes for `module:function` calls (JSON in and out)."""

    def __init__(self, max_idle: int = 2) -> None:
        self.max_idle = max_idle
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = concurrent.futures.ThreadPoolExecutor(WAITING_THREADS, thread_name_prefix="process-pool")
        _POOLS.add(self)

    async def call(self, target: str, *args: Any, timeout: float, kwargs: dict[str, Any] | None = None) -> Any:
        """`target(*args, **kwargs)` in a child; raises WorkerTimeout past `timeout` seconds, WorkerFailed on an error.

        Cancelling the caller kills the child at once, so the work stops with it.
        """
        request = {"target": target, "args": list(args), "kwargs": kwargs or {}, "cpu_seconds": timeout + CPU_GRACE}
        line = (json.dumps(request) + "\n").encode()
        child = await self._checkout()
        try:
            waiting = self._threads.submit(child.request, line, time.monotonic() + timeout)
            answer = await asyncio.wrap_future(waiting)
        except BaseException:  # cancelled, or the child died: it is not reused
            self._drop(child)
            raise
        if answer is None:
            self._drop(child)
            raise WorkerTimeout(f"did not finish within {timeout:g} s")
        self._give_back(child)
        if "error" in answer:
            raise WorkerFailed(str(answer["error"]), str(answer.get("type", "")))
        return answer.get("value")

    async def _checkout(self) -> _Child:
        """An idle child, or a new one (started in a thread: it takes a few tens of ms)."""
        taking = asyncio.wrap_future(self._threads.submit(self._take))
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:  # the child is still on its way: put it back when it comes
            taking.add_done_callback(self._give_back_taken)
            raise

    def _give_back_taken(self, taking: asyncio.Future[_Child]) -> None:
        if not taking.cancelled() and taking.exception() is None:
            self._give_back(taking.result())

    def pids(self) -> set[int]:
        """The processes the pool holds now, idle and busy."""
        with self._lock:
            return {c.pid for c in (*self._idle, *self._busy)}

    def prestart(self) -> None:
        """Start an idle child in the background, unless one is ready."""
        threading.Thread(target=self._fill, name="process-pool-start", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
        for child in children:
            child.kill()

    def _take(self) -> _Child:
        with self._lock:
            self._closed = False
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    self._busy.add(child)
                    return child
                child.kill()
        child = _Child()
        with self._lock:
            self._busy.add(child)
        return child

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
            if child.alive() and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(child)
                return
        child.kill()

    def _drop(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
        child.kill()
        self.prestart()

    def _fill(self) -> None:
        with self._lock:
            if self._closed or self._idle:
                return
        child = _Child()
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(child)
                return
        child.kill()


_POOLS: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()
