"""The `code_interpreter` tool: stateful Python sessions, each in its own bubblewrap sandbox.

Design: one long-lived sandboxed worker per conversation (bwrap running tools/code/kernel.py,
a small REPL that reads requests and answers JSON results), so variables, imports and files
persist between calls like notebook cells, and a warm call costs a pipe round trip instead of a
new sandbox and interpreter. Re-running every call with pickled state was rejected: modules,
open files, generators and C objects don't pickle, and each call would pay a cold start. The
manager also keeps one spare worker started, so a new conversation's first call is warm too.

Files: the sandbox writes only its work folder. Created files are listed by walking it with
directory descriptors (never following links) and copied out, with O_NOFOLLOW at every step, to
a folder the sandbox cannot reach; ToolResult.files holds those copies. Attachments are copied in
the same careful way.

Timeouts: the worker interrupts a cell itself after `timeout` seconds (the session survives);
if it has not answered `KILL_GRACE` seconds later, the host kills the whole sandbox from outside
and the next call gets a fresh worker (the result says the variables are lost; the files stay).
Idle sessions are reclaimed after `idle_timeout` seconds the same way. Work folders are removed
by `shutdown_all()` (and at interpreter exit).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import itertools
import json
import logging
import marshal
import os
import selectors
import shutil
import stat
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lector.tools.base import Tool, ToolContext, ToolResult
from lector.tools.code import sandbox
from lector.tools.code.sandbox import Limits, SandboxProcess, SandboxUnavailable

log = logging.getLogger(__name__)

KERNEL_SOURCE = (Path(__file__).with_name("kernel.py")).read_text(encoding="utf-8")
KILL_GRACE = 2.0
"""Seconds past the soft timeout before the host kills the sandbox."""
MAX_CODE_CHARS = 200_000
MAX_RESPONSE_BYTES = 48 << 20
EXPORT_BYTES = 128 << 20
"""Bytes of created files copied out per call for the UI."""
MAX_EXPORTED_FILES = 20
_CALLS = itertools.count(1)
CONTENT_CAP = 6000
"""Characters of text the model gets back from one call."""


@dataclass
class Execution:
    """What one call produced."""

    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    images: list[str] = field(default_factory=list)
    """PNG data URLs."""
    created: list[tuple[str, int]] = field(default_factory=list)
    """Files created or changed in the work folder: (path relative to it, size)."""
    files: list[Path] = field(default_factory=list)
    """Host copies of the created files, out of the sandbox's reach (for the UI)."""
    notes: list[str] = field(default_factory=list)
    dropped_output: int = 0
    timed_out: bool = False
    session_lost: bool = False
    """The worker died or was killed: variables are gone (files in the work folder remain)."""
    elapsed: float = 0.0

    def content(self, cap: int = CONTENT_CAP) -> str:
        parts: list[str] = list(self.notes)
        if self.stdout:
            parts.append(f"stdout:\n{self.stdout.rstrip()}")
        if self.stderr:
            parts.append(f"stderr:\n{self.stderr.rstrip()}")
        if self.dropped_output:
            parts.append(f"[{self.dropped_output} more characters of output were dropped]")
        if self.value is not None:
            parts.append(f"Out: {self.value}")
        if self.error:
            parts.append(f"Error:\n{self.error}")
        if self.created:
            more = f" and {len(self.created) - 20} more" if len(self.created) > 20 else ""
            parts.append("Files created: " + ", ".join(_describe_file(*c) for c in self.created[:20]) + more)
        if self.images:
            parts.append(f"[{len(self.images)} image(s) shown to the user]")
        text = "\n".join(parts) if parts else "(no output)"
        if len(text) > cap:
            head = text[: cap * 2 // 3]
            tail = text[-cap // 3 :]
            text = f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"
        return text


def _clean(text: object) -> str:
    """A string safe to pass on: lone surrogates from the sandbox become U+FFFD."""
    if not text:
        return ""
    return str(text).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _describe_file(rel: str, size: int) -> str:
    return f"{rel} ({size} bytes)" if size < 10_000 else f"{rel} ({size // 1024} KiB)"


@dataclass
class _Scan:
    files: dict[str, tuple[int, int, int]]
    """Regular files: relative path -> (mtime_ns, size, inode)."""
    used_bytes: int
    entries: int


def _scan(workdir: Path, max_entries: int) -> _Scan:
    """Walk the work folder by directory descriptors, never following a link the sandbox planted."""
    scan = _Scan({}, 0, 0)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(workdir, follow_symlinks=False):
        for name in dirnames + filenames:
            scan.entries += 1
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            scan.used_bytes += st.st_blocks * 512
            if stat.S_ISREG(st.st_mode):
                rel = os.path.relpath(os.path.join(dirpath, name), workdir)
                scan.files[rel] = (st.st_mtime_ns, st.st_size, st.st_ino)
        if scan.entries > max_entries:
            break
    return scan


def _unlink_inside(workdir: Path, rel: str) -> None:
    parts = Path(rel).parts
    if not parts or ".." in parts:
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY
    fd = os.open(workdir, flags)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


def export_file(workdir: Path, rel: str, dest: Path, max_bytes: int) -> Path | None:
    """Copy workdir/rel to dest, opening every component with O_NOFOLLOW (the sandbox may race us)."""
    parts = Path(rel).parts
    if not parts or ".." in parts:
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(workdir, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return None
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with dest.open("wb") as out:
            remaining = max_bytes
            while remaining > 0:
                chunk = src.read(min(1 << 20, remaining))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
    return dest


def copy_into(workdir: Path, source: Path, copied: dict[str, tuple[int, int]] | None = None) -> Path | None:
    """Copy an attachment into the work folder without following anything the sandbox planted there.

    `copied` remembers what was copied already: an unchanged attachment is not copied again, so the
    code's own edits of its copy persist.
    """
    name = source.name
    if not name or name.startswith(".") or not source.is_file():
        return None
    target = workdir / name
    src_st = source.stat()
    signature = (src_st.st_mtime_ns, src_st.st_size)
    with contextlib.suppress(FileNotFoundError):
        st = target.lstat()
        if stat.S_ISREG(st.st_mode) and copied is not None and copied.get(str(source)) == signature:
            return target
        if stat.S_ISDIR(st.st_mode):
            return None
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as dst, source.open("rb") as src:
        shutil.copyfileobj(src, dst)
    if os.geteuid() == 0:
        os.chown(target, sandbox.SANDBOX_UID, sandbox.SANDBOX_GID)
    if copied is not None:
        copied[str(source)] = signature
    return target


class Session:
    """One sandboxed worker and its work folder. Calls are serialised by `lock`."""

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
            reply, _ = self._read_reply(time.monotonic() + self.limits.startup_timeout)
        except BaseException:
            self.stop()
            raise
        if reply is None or not reply.get("ready"):
            raw = self._last_raw.decode("utf-8", "replace").strip()
            self.stop()
            raise SandboxUnavailable(f"the sandbox did not start: {raw[-800:] or 'no output'}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc = None

    _last_raw = b""

    def _read_reply(
        self, deadline: float, watch_workdir: bool = False, outgoing: bytes = b""
    ) -> tuple[dict[str, Any] | None, str]:
        """Wait for one JSON line from the worker while draining its raw output.

        Returns (reply or None, why not): "timeout", "died", "output", "disk", "bad reply".
        """
        assert self.proc is not None
        proto, raw, requests = self.proc.popen.stdout, self.proc.popen.stderr, self.proc.popen.stdin
        assert proto is not None and raw is not None and requests is not None
        pending = memoryview(outgoing)
        buf = bytearray()
        raw_kept = bytearray()
        raw_total = 0
        keep = self.limits.output_chars
        next_disk_check = time.monotonic() + 0.5
        with selectors.DefaultSelector() as sel:
            sel.register(proto, selectors.EVENT_READ, "proto")
            sel.register(raw, selectors.EVENT_READ, "raw")
            if pending:
                os.set_blocking(requests.fileno(), False)
                sel.register(requests, selectors.EVENT_WRITE, "request")
            try:
                while True:
                    now = time.monotonic()
                    if now >= deadline:
                        return None, "timeout"
                    if watch_workdir and now >= next_disk_check:
                        next_disk_check = now + 0.5
                        scan = _scan(self.workdir, self.limits.workdir_entries)
                        if scan.used_bytes > self.limits.workdir_size or scan.entries > self.limits.workdir_entries:
                            return None, "disk"
                    for key, _ in sel.select(timeout=min(0.5, deadline - now)):
                        if key.data == "request":
                            try:
                                pending = pending[os.write(requests.fileno(), pending) :]
                            except BlockingIOError:
                                continue
                            except OSError:
                                return None, "died"
                            if not pending:
                                sel.unregister(requests)
                            continue
                        chunk = os.read(key.fileobj.fileno(), 1 << 16)  # type: ignore[union-attr]
                        if key.data == "raw":
                            if not chunk:
                                sel.unregister(raw)
                                continue
                            raw_total += len(chunk)
                            if len(raw_kept) < keep:
                                raw_kept += chunk[: keep - len(raw_kept)]
                            if raw_total > self.limits.raw_output_bytes:
                                return None, "output"
                            continue
                        if not chunk:
                            return None, "died"
                        buf += chunk
                        if len(buf) > MAX_RESPONSE_BYTES:
                            return None, "output"
                        if b"\n" in buf:
                            line = bytes(buf[: buf.index(b"\n")])
                            try:
                                reply = json.loads(line)
                            except ValueError:
                                return None, "bad reply"
                            if isinstance(reply, dict):
                                reply["_raw"] = raw_kept.decode("utf-8", "replace")
                                reply["_raw_dropped"] = raw_total - len(raw_kept)
                                return reply, ""
                            return None, "bad reply"
            finally:
                self._last_raw = bytes(raw_kept)

    def _drain_raw(self) -> None:
        """Discard output that background processes wrote between calls."""
        assert self.proc is not None and self.proc.popen.stderr is not None
        fd = self.proc.popen.stderr.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            for _ in range(64):
                if not sel.select(timeout=0) or not os.read(fd, 1 << 16):
                    break

    def execute(self, code: str) -> Execution:
        """Run one cell. The caller holds `lock` and has started the worker."""
        assert self.proc is not None
        self.calls += 1
        started = time.monotonic()
        before = _scan(self.workdir, self.limits.workdir_entries)
        self._drain_raw()
        request = {
            "code": code,
            "timeout": self.limits.timeout,
            "max_output": self.limits.output_chars,
            "max_repr": 4000,
            "max_images": 8,
            "max_processes": max(4, self.limits.pids // 2),
        }
        result = Execution()
        payload = marshal.dumps(request)
        data = b"%d\n" % len(payload) + payload
        reply, why = self._read_reply(started + self.limits.timeout + KILL_GRACE, watch_workdir=True, outgoing=data)
        if reply is None:
            self._fill_failure(result, why)
        else:
            self._fill_reply(result, reply)
        after = _scan(self.workdir, self.limits.workdir_entries)
        changed = [rel for rel, sig in sorted(after.files.items()) if before.files.get(rel) != sig]
        if after.used_bytes > self.limits.workdir_size or after.entries > self.limits.workdir_entries:
            for rel in changed:
                with contextlib.suppress(OSError):
                    _unlink_inside(self.workdir, rel)
            over = (
                f"the work folder is over its quota ({self.limits.workdir_size >> 20} MiB, "
                f"{self.limits.workdir_entries} entries), so the files this call wrote were deleted"
            )
            result.error = f"{result.error}\n{over}" if result.error else over
            changed = []
        result.created = [(rel, after.files[rel][1]) for rel in changed]
        budget = EXPORT_BYTES
        for rel, size in result.created[:MAX_EXPORTED_FILES]:
            if size > budget:
                continue
            with contextlib.suppress(OSError):
                copy = export_file(self.workdir, rel, self.outputs / f"call{next(_CALLS)}" / rel, size)
                if copy is not None:
                    result.files.append(copy)
                    budget -= size
        result.elapsed = time.monotonic() - started
        self.last_used = time.monotonic()
        return result

    def _fill_reply(self, result: Execution, reply: dict[str, Any]) -> None:
        result.stdout = _clean(reply.get("stdout"))
        result.stderr = _clean(reply.get("stderr"))
        raw = _clean(reply.get("_raw"))
        if raw:
            result.stderr = (result.stderr + ("\n" if result.stderr else "") + raw).strip("\n")
        result.dropped_output = sum(
            int(reply.get(k) or 0) for k in ("stdout_dropped", "stderr_dropped", "_raw_dropped")
        )
        result.value = _clean(reply.get("value")) if reply.get("value") is not None else None
        result.error = _clean(reply.get("error")) or None
        result.timed_out = bool(reply.get("timed_out"))
        result.images = [f"data:image/png;base64,{b64}" for b64 in reply.get("images") or [] if isinstance(b64, str)]

    def _fill_failure(self, result: Execution, why: str) -> None:
        raw = self._last_raw.decode("utf-8", "replace").strip()
        exit_code = self.proc.popen.poll() if self.proc else None
        self.stop()
        result.session_lost = True
        result.timed_out = why == "timeout"
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
        result.error = (
            f"{reason}. The session was reset: variables and imports are lost; files in the work folder remain."
        )
        if raw:
            result.stderr = raw[-self.limits.output_chars :]


class SessionManager:
    """Sessions keyed by conversation id; reclaims idle ones from a background thread."""

    def __init__(
        self,
        limits: Limits | None = None,
        idle_timeout: float = 900.0,
        workroot: Path | None = None,
        env_dir: Path | None = None,
        max_sessions: int = 16,
        prewarm: bool = True,
    ) -> None:
        self.limits = limits or Limits()
        self.prewarm = prewarm
        """Keep one started worker ready, so a new conversation's first call skips the cold start."""
        self._spare: Session | None = None
        self._spare_starting = False
        self._closed = False
        self.idle_timeout = idle_timeout
        self.env_dir = env_dir
        self.max_sessions = max_sessions
        self._own_root = workroot is None
        self._workroot = workroot
        self._sessions: dict[str, Session] = {}
        self._lost: dict[str, str] = {}
        self._guard = threading.Lock()
        self._reaper: threading.Thread | None = None
        _MANAGERS.add(self)

    @property
    def workroot(self) -> Path:
        if self._workroot is None:
            self._workroot = Path(tempfile.mkdtemp(prefix="lector-sandbox-"))
        self._workroot.mkdir(parents=True, exist_ok=True)
        self._workroot.chmod(0o711)  # uid 65534 passes through, cannot list
        if os.geteuid() == 0:
            for parent in self._workroot.resolve().parents:
                if not parent.stat().st_mode & 0o001:
                    raise SandboxUnavailable(
                        f"the sandbox's work folders must be reachable by uid {sandbox.SANDBOX_UID}, "
                        f"but {parent} is not searchable by others: choose another workroot"
                    )
        return self._workroot

    def workdir_for(self, key: str) -> Path:
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in key)[:48]
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return self.workroot / f"{safe or 'conversation'}-{digest}"  # distinct ids never share a folder

    def _env(self) -> Path:
        env_dir = self.env_dir or sandbox.default_env_dir()
        if not sandbox.env_ready(env_dir):
            raise SandboxUnavailable(
                f"the sandbox's Python environment is missing ({env_dir}); "
                "build it with `lector sandbox setup` (make setup does it)"
            )
        return env_dir

    def _outputs(self, name: str) -> Path:
        outputs = self.workroot / ".outputs"
        outputs.mkdir(mode=0o700, exist_ok=True)
        return outputs / name

    def _session(self, key: str) -> Session:
        with self._guard:
            self._closed = False
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    self._evict_oldest()
                workdir = self.workdir_for(key)
                session = self._claim_spare(key, workdir)
                if session is None:
                    sandbox.prepare_workdir(workdir)
                    session = Session(key, workdir, self._outputs(workdir.name), self._env(), self.limits)
                self._sessions[key] = session
            self._start_reaper()
            return session

    def _claim_spare(self, key: str, workdir: Path) -> Session | None:
        """Hand the pre-started worker to a new conversation (its folder is renamed; the bind follows)."""
        spare, self._spare = self._spare, None
        if spare is None or workdir.exists() or not spare.alive:
            if spare is not None:
                self._spare = spare if spare.alive else None
                if not spare.alive:
                    _discard(spare)
            return None
        os.rename(spare.workdir, workdir)
        spare.key, spare.workdir, spare.outputs = key, workdir, self._outputs(workdir.name)
        spare.last_used = time.monotonic()
        return spare

    def _refill_spare(self) -> None:
        """Start a spare worker in the background if none is ready or starting."""
        with self._guard:
            if not self.prewarm or self._closed or self._spare is not None or self._spare_starting:
                return
            self._spare_starting = True

        def start() -> None:
            session = None
            try:
                workdir = sandbox.prepare_workdir(self.workroot / f".spare-{uuid.uuid4().hex[:12]}")
                session = Session("", workdir, self._outputs(workdir.name), self._env(), self.limits)
                session.start()
            except Exception as exc:
                if not self._closed:
                    log.warning("could not pre-start a sandbox worker: %s", exc)
                if session is not None:
                    _discard(session)
                session = None
            with self._guard:
                self._spare_starting = False
                if session is not None and (self._closed or self._spare is not None):
                    _discard(session)
                elif session is not None:
                    self._spare = session

        threading.Thread(target=start, name="sandbox-prewarm", daemon=True).start()

    def _evict_oldest(self) -> None:
        for oldest in sorted(self._sessions.values(), key=lambda s: s.last_used):
            if oldest.lock.acquire(blocking=False):  # never one that is running a call
                try:
                    self._close(oldest, "it was the least recently used of too many sessions")
                finally:
                    oldest.lock.release()
                return

    def _close(self, session: Session, reason: str | None) -> None:
        self._sessions.pop(session.key, None)
        if reason and session.proc is not None:
            self._lost[session.key] = reason
        session.stop()

    def execute(self, key: str, code: str, attachments: list[Path] | None = None) -> Execution:
        if len(code) > MAX_CODE_CHARS:
            return Execution(error=f"the code is too long ({len(code)} characters; at most {MAX_CODE_CHARS})")
        sandbox.require_bwrap()
        while True:
            session = self._session(key)
            session.lock.acquire()
            if self._sessions.get(key) is session:
                break
            session.lock.release()  # evicted while we waited for it: take the new one
        try:
            notes = []
            for source in attachments or []:
                with contextlib.suppress(OSError):
                    copy_into(session.workdir, Path(source), session.attachments)
            if not session.alive:
                lost = self._lost.pop(key, None)
                if session.calls and not lost:
                    lost = session.end_reason or "it stopped unexpectedly"
                session.stop()
                session.end_reason = None
                if lost:
                    notes.append(
                        f"Note: a new Python session was started because the previous one ended ({lost}); "
                        "variables and imports from earlier calls are gone, files in the work folder remain."
                    )
                session.start()
            result = session.execute(code)
            result.notes = notes + result.notes
            self._refill_spare()
            if result.session_lost:
                session.stop()
            session.last_used = time.monotonic()
            return result
        finally:
            session.lock.release()

    def reap_idle(self, now: float | None = None) -> int:
        """Close sessions idle longer than idle_timeout; returns how many."""
        now = time.monotonic() if now is None else now
        closed = 0
        with self._guard:
            for session in list(self._sessions.values()):
                if now - session.last_used > self.idle_timeout and session.lock.acquire(blocking=False):
                    try:
                        if session.proc is not None:
                            session.end_reason = f"it was idle for more than {self.idle_timeout:g} s"
                            session.stop()
                            closed += 1
                    finally:
                        session.lock.release()
        return closed

    def _start_reaper(self) -> None:
        if self._reaper is not None and self._reaper.is_alive():
            return
        interval = max(0.2, min(self.idle_timeout / 4, 30.0))
        ref = weakref.ref(self)

        def loop() -> None:  # ends when the manager is garbage-collected
            while True:
                time.sleep(interval)
                manager = ref()
                if manager is None:
                    return
                manager.reap_idle()
                del manager

        self._reaper = threading.Thread(target=loop, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    def wait_for_spare(self, timeout: float = 30.0) -> bool:
        """Start the spare worker if needed and wait until it is ready (benchmarks, warm-up at startup)."""
        self._refill_spare()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._spare is not None and self._spare.alive:
                return True
            if not self._spare_starting:
                self._refill_spare()
            time.sleep(0.005)
        return False

    def session_alive(self, key: str) -> bool:
        session = self._sessions.get(key)
        return session is not None and session.alive

    def close(self, remove_files: bool = True) -> None:
        with self._guard:
            self._closed = True
            for session in list(self._sessions.values()):
                session.stop()
            self._sessions.clear()
            if self._spare is not None:
                _discard(self._spare)
                self._spare = None
        if remove_files and self._workroot is not None:
            if self._own_root:
                shutil.rmtree(self._workroot, ignore_errors=True)
            elif self._workroot.is_dir():
                for child in self._workroot.iterdir():
                    shutil.rmtree(child, ignore_errors=True)


def _discard(session: Session) -> None:
    session.stop()
    shutil.rmtree(session.workdir, ignore_errors=True)


_MANAGERS: weakref.WeakSet[SessionManager] = weakref.WeakSet()


def shutdown_all() -> None:
    """Kill every sandboxed session in this process and remove their work folders."""
    for manager in list(_MANAGERS):
        manager.close()


atexit.register(shutdown_all)


class CodeInterpreter(Tool):
    name = "code_interpreter"
    description = (
        "Run Python code in a sandboxed, stateful session, like a Jupyter notebook: variables, imports "
        "and files persist between calls in this conversation. numpy, pandas and matplotlib are "
        "available; there is no network. Files attached to the conversation are in the current folder. "
        "The value of the last expression is shown; print() anything else you need. Matplotlib figures "
        "are shown to the user as images."
    )
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python code to run."}},
        "required": ["code"],
        "additionalProperties": False,
    }

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

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        code = str(args.get("code", ""))
        if sandbox.bwrap_path() is None:
            return ToolResult.failure(f"Error: {sandbox.INSTALL_HINT}")
        try:
            result = await asyncio.to_thread(self.manager.execute, ctx.conversation_id, code, list(ctx.attachments))
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
