"""One long-lived sandboxed kernel and its work folder: start it, run cells in it, kill it.

The kernel interrupts a cell itself after `Limits.timeout` seconds (the session survives); if it has
not answered `KILL_GRACE` seconds later, the host kills the whole sandbox from outside, and the next
call gets a fresh kernel (the result says the variables are lost; the files stay).
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from lector.tools.code.execution import Execution
from lector.tools.code.files import WorkdirScan, delete_inside, export_created, scan_workdir
from lector.tools.code.sandbox import Limits, SandboxProcess, SandboxUnavailable
from lector.tools.code.wire import RawLimits, Reply, drain_raw, encode_request, exchange

KERNEL_SOURCE = (Path(__file__).with_name("kernel.py")).read_text(encoding="utf-8")
KILL_GRACE = 2.0
"""Seconds past the soft timeout before the host kills the sandbox."""
MAX_REPR = 4000
MAX_IMAGES = 8
_CALLS = itertools.count(1)


class Session:
    """One sandboxed kernel and its work folder. Calls are serialised by `lock`."""

    def __init__(self, key: str, workdir: Path, outputs: Path, env_dir: Path, limits: Limits) -> None:
        self.key = key
        self.workdir = workdir
        self.outputs = outputs
        """Where copies of created files go: outside the sandbox, so it cannot swap them for links."""
        self.env_dir = env_dir
        self.limits = limits
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.proc: SandboxProcess | None = None
        self.calls = 0
        self.end_reason: str | None = None
        self.attachments: dict[str, tuple[int, int]] = {}
        """Attachments copied in: source path -> (mtime_ns, size) at the time."""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def start(self) -> None:
        python = str(self.env_dir / "bin" / "python")
        self.proc = SandboxProcess(
            [python, "-I", "-S", "-B", "-c", KERNEL_SOURCE], self.workdir, self.env_dir, self.limits
        )
        try:
            reply = self._exchange(b"", time.monotonic() + self.limits.startup_timeout)
        except BaseException:
            self.stop()
            raise
        if reply.answer is None or not reply.answer.get("ready"):
            raw = reply.raw.decode("utf-8", "replace").strip()
            self.stop()
            raise SandboxUnavailable(f"the sandbox did not start: {raw[-800:] or 'no output'}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc = None

    def _exchange(self, outgoing: bytes, deadline: float, watch_workdir: bool = False) -> Reply:
        assert self.proc is not None
        raw_limits = RawLimits(keep=self.limits.output_chars, most=self.limits.raw_output_bytes)
        return exchange(self.proc.popen, outgoing, deadline, raw_limits, self._over_quota if watch_workdir else None)

    def _over_quota(self) -> bool:
        scan = scan_workdir(self.workdir, self.limits.workdir_entries)
        return scan.over(self.limits.workdir_size, self.limits.workdir_entries)

    def execute(self, code: str) -> Execution:
        """Run one cell. The caller holds `lock` and has started the kernel."""
        assert self.proc is not None
        self.calls += 1
        started = time.monotonic()
        before = scan_workdir(self.workdir, self.limits.workdir_entries)
        drain_raw(self.proc.popen)
        request = {
            "code": code,
            "timeout": self.limits.timeout,
            "max_output": self.limits.output_chars,
            "max_repr": MAX_REPR,
            "max_images": MAX_IMAGES,
        }
        deadline = started + self.limits.timeout + KILL_GRACE
        reply = self._exchange(encode_request(request), deadline, watch_workdir=True)
        if reply.answer is None:
            result = self._failure(reply)
        else:
            result = Execution.from_answer(reply.answer, reply.raw, reply.raw_dropped)
        self._collect_files(result, before)
        result.elapsed = time.monotonic() - started
        self.last_used = time.monotonic()
        return result

    def _collect_files(self, result: Execution, before: WorkdirScan) -> None:
        """List the files the call created and copy them out, or delete them when the folder is over quota."""
        after = scan_workdir(self.workdir, self.limits.workdir_entries)
        changed = after.changed_since(before)
        if after.over(self.limits.workdir_size, self.limits.workdir_entries):
            delete_inside(self.workdir, changed)
            result.add_error(
                f"the work folder is over its quota ({self.limits.workdir_size >> 20} MiB, "
                f"{self.limits.workdir_entries} entries), so the files this call wrote were deleted"
            )
            return
        result.created = [(rel, after.files[rel][1]) for rel in changed]
        result.files = export_created(self.workdir, result.created, self.outputs / f"call{next(_CALLS)}")

    def _failure(self, reply: Reply) -> Execution:
        """The result of a call the kernel never answered: the sandbox is killed and the session reset."""
        raw = reply.raw.decode("utf-8", "replace").strip()
        exit_code = self.proc.popen.poll() if self.proc else None
        self.stop()
        why = reply.failure
        self.end_reason = {"timeout": "a call timed out", "died": "its Python process died"}.get(why, why)
        reason = {
            "timeout": f"the code ran longer than {self.limits.timeout:g} s and ignored the interrupt, "
            "so the sandbox was killed",
            "died": "the Python process died"
            + (f" (exit status {exit_code})" if exit_code not in (None, 0) else "")
            + " — probably a memory, CPU-time or process limit, or the code killed it",
            "output": "the code wrote more output than allowed, so the sandbox was killed",
            "disk": f"the work folder grew past {self.limits.workdir_size >> 20} MiB or "
            f"{self.limits.workdir_entries} entries, so the sandbox was killed",
            "bad reply": "the sandbox's reply was corrupted, so the sandbox was killed",
        }.get(why, why)
        return Execution(
            error=f"{reason}. The session was reset: variables and imports are lost; files in the work folder remain.",
            stderr=raw[-self.limits.output_chars :] if raw else "",
            timed_out=why == "timeout",
            session_lost=True,
        )
