"""Start untrusted programs inside a bubblewrap sandbox, and the Python environment they run with.

Isolation, from the outside in:
- bwrap is started with a minimal environment ({"PATH"}) so nothing of the host's leaks through
  /proc/1/environ, and (when we are root) as uid/gid 65534 with no supplementary groups, so that
  "root" inside never maps to root outside;
- rlimits (CPU, address space, processes, file size, open files, no core dumps) and, where the
  cgroup tree is writable (v1 or v2), a memory and pids cgroup are applied in the child before exec;
- bwrap unshares every namespace (the network one has only `lo`), forbids nested user namespaces,
  drops all capabilities, starts a new session, dies with its parent, mounts /usr and the sandbox
  Python environment read-only, the per-session work folder read-write, a size-capped /tmp, and
  remounts / read-only; /etc, /root, /home, the project and the host's /proc are not there at all;
- the caller enforces a wall clock from outside and kills the whole process group (the pid
  namespace then reaps every process left inside, double-forked daemons included);
- when a cell ends, the kernel kills every other process in the sandbox (kernel.py), so nothing
  a cell starts outlives it.

Running `lector sandbox setup` builds the sandbox's Python environment (a venv made from
Debian's /usr/bin/python3 with numpy, pandas and matplotlib, world-readable so uid 65534 can use it).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 65534
SANDBOX_GID = 65534
SANDBOX_PACKAGES = ("numpy", "pandas", "matplotlib")
WORKDIR_INSIDE = "/work"
INSTALL_HINT = (
    "The code interpreter needs bubblewrap (the `bwrap` program) to isolate code, and it is not "
    "installed. Install it with `sudo apt-get install bubblewrap` (Debian/Ubuntu) or "
    "`sudo dnf install bubblewrap` (Fedora); `make setup` does this. Code is never run unsandboxed."
)
READY_MARKER = ".lector-sandbox-ready"

BWRAP_PATH: str | None = "auto"
"""Path of bwrap; "auto" looks it up on PATH. Tests set it to a missing path."""


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here (bwrap or its Python environment is missing)."""


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0
    """Wall-clock seconds one execution may take (enforced from outside, plus a short grace)."""
    cpu_seconds: int = 600
    """CPU seconds for the whole life of a sandboxed worker (RLIMIT_CPU)."""
    address_space: int = 1536 << 20
    """Virtual memory per process (RLIMIT_AS); 2 GiB allocations fail with MemoryError."""
    memory: int = 1024 << 20
    """Memory of the whole sandbox, /tmp included (cgroup), where cgroups are writable."""
    pids: int = 64
    """Processes and threads in the sandbox (cgroup pids.max)."""
    nproc: int = 256
    """RLIMIT_NPROC: counted per uid across the host, so it is looser than `pids`."""
    open_files: int = 256
    file_size: int = 64 << 20
    """Largest file the code may write (RLIMIT_FSIZE)."""
    tmp_size: int = 64 << 20
    """Size of the tmpfs mounted on /tmp."""
    workdir_size: int = 256 << 20
    """The work folder may hold this much; beyond it the run is stopped."""
    workdir_entries: int = 5000
    output_chars: int = 20_000
    """Output kept per stream; the rest is counted and dropped."""
    raw_output_bytes: int = 8 << 20
    """Output written straight to the descriptors beyond this stops the run."""
    startup_timeout: float = 20.0


def bwrap_path() -> str | None:
    if BWRAP_PATH == "auto":
        return shutil.which("bwrap") or next(
            (p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None
        )
    if BWRAP_PATH and os.access(BWRAP_PATH, os.X_OK):
        return BWRAP_PATH
    return None


def require_bwrap() -> str:
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable(INSTALL_HINT)
    return path


# ---------------------------------------------------------------- the sandbox's Python environment


def base_python() -> str:
    """The interpreter the sandbox venv is made from: it must live under /usr (mounted inside)."""
    return os.environ.get("LECTOR_SANDBOX_PYTHON", "/usr/bin/python3")


def default_env_dir() -> Path:
    override = os.environ.get("LECTOR_SANDBOX_ENV")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/lib/lector/sandbox-env")  # outside /root, which uid 65534 cannot enter
    return Path.home() / ".cache" / "lector" / "sandbox-env"


def env_ready(env_dir: Path) -> bool:
    return (env_dir / READY_MARKER).is_file() and (env_dir / "bin" / "python").exists()


def setup_env(env_dir: Path | None = None, quiet: bool = True) -> Path:
    """Create the sandbox's venv with numpy, pandas and matplotlib (idempotent); returns its folder."""
    env_dir = env_dir or default_env_dir()
    if env_ready(env_dir):
        return env_dir
    python = base_python()
    if not os.access(python, os.X_OK):
        raise SandboxUnavailable(
            f"{python} is missing: install Debian's python3 (`apt-get install python3`) for the sandbox."
        )
    old_umask = os.umask(0o022)
    try:
        for parent in reversed(env_dir.parents):
            if not parent.exists():
                parent.mkdir(mode=0o755)
        subprocess.run([python, "-m", "venv", "--without-pip", "--clear", str(env_dir)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install"]
        subprocess.run([*pip, *(["-q"] if quiet else []), *SANDBOX_PACKAGES], check=True)
        mpl_cache = env_dir / "mpl-cache"
        mpl_cache.mkdir(exist_ok=True)
        # build matplotlib's font list once, at the paths the sandbox sees (the env is bound in place)
        subprocess.run(
            [str(env_dir / "bin" / "python"), "-c", "import matplotlib.pyplot"],
            check=True,
            env={"PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(mpl_cache), "MPLBACKEND": "Agg"},
        )
        subprocess.run(["chmod", "-R", "a+rX,go-w", str(env_dir)], check=True)
        (env_dir / READY_MARKER).write_text(" ".join(SANDBOX_PACKAGES) + "\n")
    finally:
        os.umask(old_umask)
    return env_dir


# ---------------------------------------------------------------- cgroups


class Cgroup:
    """A memory+pids cgroup for one sandbox (v1 or v2, whichever is writable), or nothing."""

    def __init__(self, dirs: list[Path], procs_files: list[Path]) -> None:
        self.dirs = dirs
        self.procs_files = procs_files

    @classmethod
    def create(cls, limits: Limits, name: str) -> Cgroup:
        global _swept
        if not _swept:
            _swept = True
            sweep_stale_cgroups()
        with contextlib.suppress(OSError):
            if Path("/sys/fs/cgroup/cgroup.controllers").exists():
                return cls._create_v2(limits, name)
            return cls._create_v1(limits, name)
        return cls([], [])

    @classmethod
    def _own_paths(cls) -> dict[str, str]:
        paths = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                paths[c] = path
        return paths

    @classmethod
    def _create_v1(cls, limits: Limits, name: str) -> Cgroup:
        own = cls._own_paths()
        made: list[Path] = []
        settings = {
            "memory": [("memory.limit_in_bytes", limits.memory), ("memory.memsw.limit_in_bytes", limits.memory)],
            "pids": [("pids.max", limits.pids)],
        }
        try:
            for controller, values in settings.items():
                mount = Path("/sys/fs/cgroup") / controller
                if not (mount / "cgroup.procs").exists() or controller not in own:
                    continue
                d = mount / own[controller].lstrip("/") / "lector-sandbox" / name
                d.mkdir(parents=True)
                made.append(d)
                for filename, value in values:
                    with contextlib.suppress(OSError):
                        (d / filename).write_text(str(value))
        except OSError:
            cls(made, []).remove()
            return cls([], [])
        return cls(made, [d / "cgroup.procs" for d in made])

    @classmethod
    def _create_v2(cls, limits: Limits, name: str) -> Cgroup:
        own = cls._own_paths().get("", "/")
        parent = Path("/sys/fs/cgroup") / own.lstrip("/") / "lector-sandbox"
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
        d = parent / name
        d.mkdir()
        try:
            (d / "memory.max").write_text(str(limits.memory))
            with contextlib.suppress(OSError):
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(limits.pids))
        except OSError:
            cls([d], []).remove()
            return cls([], [])
        return cls([d], [d / "cgroup.procs"])

    @property
    def active(self) -> bool:
        return bool(self.procs_files)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in f.read_text().split())
        return found

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        _PENDING.discard(self)
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs, self.procs_files = [], []


_swept = False
_PENDING: set[Cgroup] = set()
"""Cgroups being removed in the background; `remove_pending_cgroups` finishes them at exit."""


def _cgroup_parents() -> list[Path]:
    parents = []
    with contextlib.suppress(OSError):
        own = Cgroup._own_paths()
        for controller, path in own.items():
            mount = Path("/sys/fs/cgroup") / controller if controller else Path("/sys/fs/cgroup")
            parents.append(mount / path.lstrip("/") / "lector-sandbox")
    return parents


def sweep_stale_cgroups() -> None:
    """Remove the empty cgroups that processes which have since died left behind ("s-<pid>-...")."""
    for parent in _cgroup_parents():
        with contextlib.suppress(OSError):
            for d in parent.iterdir():
                pid = d.name.split("-")[1] if d.name.startswith("s-") and d.name.count("-") >= 2 else ""
                if d.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    with contextlib.suppress(OSError):
                        d.rmdir()


def remove_pending_cgroups() -> None:
    for cgroup in list(_PENDING):
        cgroup.remove()


atexit.register(remove_pending_cgroups)


# ---------------------------------------------------------------- starting a sandboxed process


def _count_own_processes(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += 1
    return count


def _child_setup(limits: Limits, cgroup_procs: Sequence[Path], drop: bool, nproc: int) -> Callable[[], None]:
    """The function run in the forked child before exec: join the cgroup, set rlimits, drop the uid."""
    procs_paths = [str(p) for p in cgroup_procs]
    rlimits = [
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_AS, limits.address_space),
        (resource.RLIMIT_FSIZE, limits.file_size),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, nproc),
    ]

    def setup() -> None:
        for path in procs_paths:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # "0" means the writing process
            finally:
                os.close(fd)
        for which, value in rlimits:
            resource.setrlimit(which, (value, value))
        if drop:
            os.setgroups([])
            os.setgid(SANDBOX_GID)
            os.setuid(SANDBOX_UID)

    return setup


def bwrap_args(
    bwrap: str, workdir: Path, env_dir: Path, limits: Limits, argv: Sequence[str], env: dict[str, str]
) -> list[str]:
    args = [
        bwrap,
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/sbin", "/sbin",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--ro-bind", str(env_dir), str(env_dir),
        "--bind", str(workdir), WORKDIR_INSIDE,
        "--size", str(limits.tmp_size), "--tmpfs", "/tmp",
        "--proc", "/proc",
        "--dev", "/dev",
        "--remount-ro", "/",
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--clearenv",
    ]  # fmt: skip
    if not Path("/usr/lib64").exists():
        i = args.index("/lib64")
        del args[i - 2 : i + 1]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--chdir", WORKDIR_INSIDE, *argv]


def sandbox_env(env_dir: Path) -> dict[str, str]:
    """The environment inside the sandbox: nothing of the host's."""
    return {
        "PATH": f"{env_dir}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": WORKDIR_INSIDE,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "LECTOR_MPL_CACHE": str(env_dir / "mpl-cache"),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }


def prepare_workdir(path: Path) -> Path:
    """Make the per-session work folder, owned by the sandbox uid (its parent must be traversable)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, SANDBOX_UID, SANDBOX_GID)
        parent = path.parent
        parent.chmod(parent.stat().st_mode | 0o111)
    return path


_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


class SandboxProcess:
    """One process tree in a bubblewrap sandbox, with pipes for stdin, stdout and stderr."""

    def __init__(
        self,
        argv: Sequence[str],
        workdir: Path,
        env_dir: Path,
        limits: Limits,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        bwrap = require_bwrap()
        self.limits = limits
        self.cgroup = Cgroup.create(limits, f"s-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        drop = os.geteuid() == 0
        nproc = limits.nproc if drop else _count_own_processes(os.getuid()) + limits.nproc
        env = {**sandbox_env(env_dir), **(extra_env or {})}
        try:
            # bwrap --die-with-parent ties the sandbox to the THREAD that forked it, so every spawn
            # happens on one long-lived thread (a worker thread of asyncio.to_thread may exit any time)
            self.popen = _SPAWNER.submit(
                subprocess.Popen,
                bwrap_args(bwrap, workdir, env_dir, limits, argv, env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"PATH": "/usr/bin:/bin"},  # bwrap's own environment is visible in /proc/1/environ
                cwd="/",
                close_fds=True,
                start_new_session=True,
                preexec_fn=_child_setup(limits, self.cgroup.procs_files, drop, nproc),
            ).result()
        except BaseException:
            self.cgroup.remove()
            raise
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """Kill everything: bwrap's process group, then whatever is left in the cgroup."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.cgroup.kill_all()
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)
        self.cgroup.kill_all()
        if self.cgroup.active:  # the last tasks can take a moment to leave; don't make the caller wait
            _PENDING.add(self.cgroup)
            threading.Thread(target=self.cgroup.remove, name="cgroup-cleanup", daemon=True).start()
