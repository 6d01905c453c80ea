"""The code interpreter's sessions by conversation: one sandboxed kernel each, a spare one, idle reaping.

One long-lived kernel per conversation keeps variables, imports and files between calls like notebook
cells, and a warm call costs a pipe round trip instead of a new sandbox and interpreter. Re-running every
call with pickled state was rejected: modules, open files, generators and C objects don't pickle, and each
call would pay a cold start. The manager also keeps one spare kernel started, so a new conversation's
first call is warm too. Idle sessions are killed after `idle_timeout` seconds (their files stay); work
folders are removed by `shutdown_all()` (and at interpreter exit).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from pathlib import Path

from lector.tools.code import sandbox
from lector.tools.code.execution import Execution
from lector.tools.code.files import copy_into
from lector.tools.code.sandbox import Limits, SandboxUnavailable
from lector.tools.code.session import Session

log = logging.getLogger(__name__)

MAX_CODE_CHARS = 200_000


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
            for source in attachments or []:
                with contextlib.suppress(OSError):
                    copy_into(session.workdir, Path(source), session.attachments)
            notes = [] if session.alive else self._restart(session)
            result = session.execute(code)
            result.notes = notes + result.notes
            self._refill_spare()
            if result.session_lost:
                session.stop()
            session.last_used = time.monotonic()
            return result
        finally:
            session.lock.release()

    def _restart(self, session: Session) -> list[str]:
        """Start the session's kernel; returns a note for the model when an earlier one was lost."""
        lost = self._lost.pop(session.key, None)
        if session.calls and not lost:
            lost = session.end_reason or "it stopped unexpectedly"
        session.stop()
        session.end_reason = None
        session.start()
        if not lost:
            return []
        return [
            f"Note: a new Python session was started because the previous one ended ({lost}); "
            "variables and imports from earlier calls are gone, files in the work folder remain."
        ]

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
