"""Attacks on the code interpreter's sandbox: each must be contained, quickly, leaving the host and the next run fine.

Every test asserts (1) the attack failed, (2) the elapsed time stayed within a generous bound, and
(3) the host is unaffected and the next run (same session or a new one) still works.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lector.tools.code import sandbox
from lector.tools.code.execution import Execution
from lector.tools.code.manager import SessionManager
from lector.tools.code.sandbox import Limits
from lector.tools.code.session import KILL_GRACE
from lector.tools.code.tool import CodeInterpreter

pytestmark = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not installed")

TIMEOUT = 3.0
LIMITS = Limits(timeout=TIMEOUT, file_size=16 << 20, tmp_size=8 << 20, workdir_size=64 << 20)
BOUND = TIMEOUT + KILL_GRACE + 5.0
"""Generous bound on the elapsed time of any contained attack."""
SECRET = "lector-host-secret-8c1f0e"


@pytest.fixture(scope="module")
def manager() -> Iterator[SessionManager]:
    sandbox.setup_env()
    os.environ["LECTOR_TEST_SECRET"] = SECRET  # the host process has a secret from the start
    tool = CodeInterpreter(limits=LIMITS)
    yield tool.manager
    tool.close()
    os.environ.pop("LECTOR_TEST_SECRET", None)


def attack(manager: SessionManager, code: str, key: str = "attack") -> Execution:
    started = time.monotonic()
    result = manager.execute(key, code)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"took {elapsed:.1f} s: {result.content()}"
    return result


def next_run_ok(manager: SessionManager, key: str = "attack") -> None:
    for k in (key, f"fresh-{key}-{time.monotonic_ns()}"):
        result = manager.execute(k, "print(1 + 1)")
        assert result.stdout == "2\n" and not result.error, result.content()


def host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


def test_write_to_root_and_usr_fails(manager: SessionManager) -> None:
    code = (
        "import os\nfor path in ('/pwned-lector', '/usr/pwned-lector', '/usr/bin/pwned-lector'):\n"
        "    try:\n        open(path, 'w').write('x'); print('WROTE', path)\n"
        "    except OSError as e:\n        print('denied', path, e.errno)\n"
    )
    result = attack(manager, code)
    assert "WROTE" not in result.stdout and result.stdout.count("denied") == 3
    assert not Path("/pwned-lector").exists() and not Path("/usr/pwned-lector").exists()
    next_run_ok(manager)


def test_read_root_home_and_etc_shadow_fails(manager: SessionManager) -> None:
    code = (
        "for path in ('/root', '/etc/shadow', '/etc/passwd', '/home'):\n"
        "    try:\n        import os\n"
        "        print('READ', path, os.listdir(path) if os.path.isdir(path) else open(path).read()[:50])\n"
        "    except OSError as e:\n        print('denied', path, type(e).__name__)\n"
    )
    result = attack(manager, code)
    assert "READ" not in result.stdout and result.stdout.count("denied") == 4
    assert "root:" not in result.content()
    next_run_ok(manager)


def test_host_environment_does_not_leak(manager: SessionManager) -> None:
    code = (
        "import os\nseen = [repr(dict(os.environ))]\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        try: seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
        "        except OSError: pass\n"
        "print('\\n'.join(seen))"
    )
    result = attack(manager, code)
    assert "PATH=" in result.stdout  # it did read the sandbox's environments
    assert SECRET not in result.content() and "LECTOR_TEST_SECRET" not in result.content()
    next_run_ok(manager)


def test_host_project_files_are_not_visible(manager: SessionManager) -> None:
    project_file = Path(__file__).resolve().parents[2] / "pyproject.toml"
    this_file = Path(__file__).resolve()
    code = (
        f"for path in ({str(project_file)!r}, {str(this_file)!r}, '/work/main/pyproject.toml'):\n"
        "    try: print('READ', open(path).read()[:300])\n"
        "    except OSError as e: print('denied', type(e).__name__)\n"
        "import os; print(sorted(os.listdir('/')))"
    )
    result = attack(manager, code)
    assert "READ" not in result.stdout and "[project]" not in result.stdout
    assert "'root'" not in result.stdout and "'etc'" not in result.stdout
    next_run_ok(manager)


def test_connect_to_host_loopback_server_fails(manager: SessionManager) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.3)
    port = server.getsockname()[1]
    try:
        code = (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')\n"
            "except OSError as e:\n    print('refused', type(e).__name__)\n"
        )
        result = attack(manager, code)
        assert "CONNECTED" not in result.stdout and "refused" in result.stdout
        with pytest.raises(TimeoutError):
            server.accept()  # nothing ever reached the host's server
    finally:
        server.close()
    next_run_ok(manager)


def test_connect_to_public_address_fails(manager: SessionManager) -> None:
    # 192.0.2.1 (TEST-NET-1) stands for any outside address: the sandbox has no route at all
    code = (
        "import socket\nprint(socket.if_nameindex())\ntry:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=2); print('CONNECTED')\n"
        "except OSError as e:\n    print('failed', e.errno)\n"
    )
    result = attack(manager, code)
    assert "CONNECTED" not in result.stdout
    assert "[(1, 'lo')]" in result.stdout  # only loopback inside
    assert "failed 101" in result.stdout  # ENETUNREACH: no route leaves the namespace
    next_run_ok(manager)


def test_dns_lookup_reaches_no_resolver(manager: SessionManager) -> None:
    # a .invalid name never exists: a resolver that answered would say so (EAI_NONAME); the sandbox has
    # none to ask, so the lookup cannot even be tried (EAI_AGAIN), and the host's resolver file is absent
    code = (
        "import os, socket\nprint('resolv.conf', os.path.exists('/etc/resolv.conf'))\ntry:\n"
        "    print('RESOLVED', socket.getaddrinfo('lector-sandbox-probe.invalid', 443))\n"
        "except socket.gaierror as e:\n    print('no dns', e.errno == socket.EAI_AGAIN, e)\n"
    )
    result = attack(manager, code)
    assert "resolv.conf False" in result.stdout
    assert "no dns True" in result.stdout, result.stdout
    next_run_ok(manager)


def test_unshare_user_namespace_fails(manager: SessionManager) -> None:
    code = (
        "import ctypes, os, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "p = subprocess.run(['unshare', '--user', '--map-root-user', 'id', '-u'], capture_output=True, text=True)\n"
        "print('cmd', p.returncode, p.stdout.strip())\n"
        "print('uid', os.getuid(), os.geteuid())"
    )
    result = attack(manager, code)
    assert "unshare -1" in result.stdout
    assert "cmd 0" not in result.stdout
    assert "uid 65534 65534" in result.stdout
    next_run_ok(manager)


def test_allocate_2_gib_fails_cleanly(manager: SessionManager) -> None:
    result = attack(manager, "keep = 'state'\nblob = bytearray(2 * 1024**3)\nlen(blob)")
    assert "MemoryError" in (result.error or "")
    assert manager.execute("attack", "keep").value == "'state'"  # the session survived
    next_run_ok(manager)


def test_busy_loop_is_interrupted_and_session_survives(manager: SessionManager) -> None:
    started = time.monotonic()
    result = attack(manager, "survivor = 42\nwhile True: pass")
    assert result.timed_out and "TimeoutError" in (result.error or "")
    assert time.monotonic() - started >= TIMEOUT - 0.5
    assert manager.execute("attack", "survivor").value == "42"
    next_run_ok(manager)


def test_ignoring_signals_and_sleeping_is_killed_from_outside(manager: SessionManager) -> None:
    code = (
        "import signal, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "time.sleep(1000)"
    )
    result = attack(manager, code, "stubborn")
    assert result.timed_out and result.session_lost
    assert "killed" in (result.error or "")
    after = manager.execute("stubborn", "print(1 + 1)")
    assert after.stdout == "2\n"
    assert any("new Python session" in note for note in after.notes)
    next_run_ok(manager, "stubborn")


def test_busy_loop_blocking_the_alarm_is_killed_from_outside(manager: SessionManager) -> None:
    code = "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\nwhile True: pass"
    result = attack(manager, code, "blocked")
    assert result.timed_out and result.session_lost
    next_run_ok(manager, "blocked")


def test_stdout_flood_is_capped(manager: SessionManager) -> None:
    result = attack(manager, "while True: print('x' * 1000)")
    assert "output limit exceeded" in (result.error or "")
    assert len(result.stdout) <= LIMITS.output_chars
    assert len(result.content()) < 7000
    next_run_ok(manager)


def test_raw_descriptor_flood_is_stopped(manager: SessionManager) -> None:
    result = attack(manager, "import os\nwhile True: os.write(1, b'y' * 65536)", "rawflood")
    assert result.session_lost and "output" in (result.error or "")
    assert len(result.stderr) <= LIMITS.output_chars
    next_run_ok(manager, "rawflood")


def test_writing_a_1_gib_file_is_capped(manager: SessionManager) -> None:
    code = (
        "chunk = b'\\0' * (1 << 20)\ntry:\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        for _ in range(1024): f.write(chunk)\n"
        "except OSError as e:\n    print('stopped', e.errno)\n"
    )
    result = attack(manager, code, "bigfile")
    assert "stopped 27" in result.stdout  # EFBIG
    big = manager.workdir_for("bigfile") / "big.bin"
    assert big.stat().st_size <= LIMITS.file_size
    big.unlink()
    next_run_ok(manager, "bigfile")


def test_filling_tmp_is_capped(manager: SessionManager) -> None:
    code = (
        "chunk = b'\\0' * (1 << 20)\ntry:\n"
        "    with open('/tmp/big.bin', 'wb') as f:\n"
        "        for _ in range(1024): f.write(chunk)\n"
        "except OSError as e:\n    print('stopped', e.errno)\n"
        "import os; print(os.path.getsize('/tmp/big.bin') <= 8 << 20)"
    )
    result = attack(manager, code)
    assert "stopped 28" in result.stdout and "True" in result.stdout  # ENOSPC
    next_run_ok(manager)


def test_filling_the_work_folder_is_stopped(manager: SessionManager) -> None:
    code = "chunk = b'\\1' * (8 << 20)\nfor i in range(40):\n    open(f'part{i}.bin', 'wb').write(chunk)"
    result = attack(manager, code, "disk")
    assert "work folder" in (result.error or "")
    used = sum(p.stat().st_size for p in manager.workdir_for("disk").rglob("*") if p.is_file())
    assert used <= LIMITS.workdir_size
    next_run_ok(manager, "disk")


def test_fork_bomb_is_contained(manager: SessionManager) -> None:
    result = attack(manager, "before = 'bomb'\nimport os\nwhile True:\n    os.fork()", "forkbomb")
    assert result.error
    assert len(os.listdir("/proc")) < 5000
    # the worker reaps the dead copies, so the session itself keeps working
    assert manager.execute("forkbomb", "import subprocess\nsubprocess.run(['true']).returncode, before").value == (
        "(0, 'bomb')"
    )
    next_run_ok(manager, "forkbomb")


def test_fork_bomb_left_running_in_the_background_is_stopped(manager: SessionManager) -> None:
    code = (
        "import os\nif os.fork() == 0:\n    while True:\n"
        "        try: os.fork()\n        except OSError: pass\n'left running'"
    )
    first = attack(manager, code, "bgbomb")
    assert first.value == "'left running'"
    time.sleep(0.5)
    result = attack(manager, "print(1 + 1)", "bgbomb")
    assert result.stdout == "2\n"
    assert "were killed" in first.stderr + result.stderr  # found at the end of its cell or the next
    code = (
        "import os\nalive = [p for p in os.listdir('/proc') if p.isdigit() and "
        "open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z']\nlen(alive)"
    )
    deadline = time.monotonic() + 10  # killed bomb processes may take a moment to be reaped under load
    while (alive := attack(manager, code, "bgbomb").value) != "2" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert alive == "2"  # bwrap's init and the worker: no bomb left
    next_run_ok(manager, "bgbomb")


def test_double_forked_daemon_dies_with_its_cell(manager: SessionManager) -> None:
    marker = "987654321"
    code = (
        "import os\npid = os.fork()\nif pid == 0:\n    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/usr/bin/sleep', ['sleep', '{marker}'])\n"
        "    os._exit(0)\nos.waitpid(pid, 0)\nimport time\n"
        "cmdlines = lambda: [open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit()]\n"
        f"while not any('{marker}' in line for line in cmdlines()):\n"
        "    time.sleep(0.01)\n'spawned'"
    )
    result = attack(manager, code, "daemon")
    assert result.value == "'spawned'"  # it ran inside the cell
    assert host_processes_with(marker) == []  # and was gone when the cell returned
    assert "were killed" in result.stderr
    next_run_ok(manager, "daemon")


ALIVE = (
    "import os\nalive = [p for p in os.listdir('/proc') if p.isdigit() and "
    "open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z']\n"
    "(kept + 1, len(alive), os.path.exists('escaped.txt'))"
)
"""The next cell's view: the variable kept, the processes alive (bwrap's init and the kernel), the file."""
BACKGROUND = {
    "setsid and double fork": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(1.5)\n        open('escaped.txt', 'w').write('x')\n    os._exit(0)\n"
    ),
    "Popen in a new session": "import subprocess\nsubprocess.Popen(['sleep', '100'], start_new_session=True)\n",
    "fork without setsid": (
        "import os, time\nif os.fork() == 0:\n    time.sleep(1.5)\n"
        "    open('escaped.txt', 'w').write('x')\n    os._exit(0)\n"
    ),
    "nohup in the background": (
        "import subprocess\n"
        "subprocess.run('nohup sh -c \"sleep 1.5; echo x > escaped.txt\" >/dev/null 2>&1 &', shell=True)\n"
    ),
    "daemon that ignores SIGTERM and SIGHUP": (
        "import os, signal, time\nif os.fork() == 0:\n    os.setsid()\n"
        "    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n"
        "    time.sleep(1.5)\n    open('escaped.txt', 'w').write('x')\n    os._exit(0)\n"
    ),
}


@pytest.mark.parametrize(
    "code",
    list(BACKGROUND.values()),
    ids=list(BACKGROUND),
)
def test_nothing_a_cell_starts_outlives_it(manager: SessionManager, code: str) -> None:
    key = f"background-{abs(hash(code))}"
    result = attack(manager, f"kept = 41\n{code}'started'", key)
    assert result.value == "'started'" and not result.error, result.content()
    time.sleep(3)  # past the moment the background process would have written its file
    assert not (manager.workdir_for(key) / "escaped.txt").exists()
    after = attack(manager, ALIVE, key)
    assert after.value == "(42, 2, False)", after.content()  # the kernel kept its variables; nothing else runs
    assert "were killed" in result.stderr  # the model is told
    next_run_ok(manager, key)


def test_a_grandchild_forked_as_its_parent_exits_is_killed_every_time(manager: SessionManager) -> None:
    """A grandchild forked just as its parent exits, in fresh kernels, the child waiting a little longer each
    time. A /proc listing followed by a liveness check once missed such a grandchild (about one cell in 30)."""
    code = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    until = time.perf_counter() + {delay}\n"
        "    while time.perf_counter() < until: pass\n    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n        open(f'escaped-{{os.getpid()}}.txt', 'w').write('x')\n    os._exit(0)\n"
        "'started'"
    )
    keys = [f"grandchild-race-{i}" for i in range(30)]
    notes = [attack(manager, code.format(delay=i * 2e-5), key).stderr for i, key in enumerate(keys)]
    time.sleep(1)
    assert not [key for key in keys if list(manager.workdir_for(key).glob("escaped-*.txt"))]
    assert all("were killed" in note for note in notes), notes


def test_daemon_plus_timeout_leaves_nothing_behind(manager: SessionManager) -> None:
    marker = "987654322"
    code = (
        "import os, signal\nif os.fork() == 0:\n    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/usr/bin/sleep', ['sleep', '{marker}'])\n"
        "    os._exit(0)\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"
    )
    result = attack(manager, code, "daemon2")
    assert result.session_lost
    deadline = time.monotonic() + 5
    while host_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert host_processes_with(marker) == []
    next_run_ok(manager, "daemon2")


def test_cannot_see_ptrace_or_kill_host_processes(manager: SessionManager) -> None:
    host_pid = os.getpid()
    code = (
        "import ctypes, os, signal\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"print('ptrace', libc.ptrace(16, {host_pid}, 0, 0))\n"
        f"try:\n    os.kill({host_pid}, signal.SIGKILL); print('KILLED')\n"
        "except OSError as e:\n    print('kill denied', type(e).__name__)\n"
        "print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
    )
    result = attack(manager, code)
    assert "ptrace -1" in result.stdout and "kill denied" in result.stdout
    assert str(host_pid) not in result.stdout.split("pids", 1)[1] or host_pid < 10
    # signalling every process it can see reaches nothing outside; killing itself ends only its session
    code = "import os, signal\nos.kill(1, signal.SIGKILL)\ntry: os.kill(-1, signal.SIGKILL)\nexcept OSError: pass"
    attack(manager, code, "killall")
    result = attack(manager, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killall")
    assert result.session_lost
    assert os.getpid() == host_pid
    next_run_ok(manager, "killall")


def test_planted_symlinks_never_reach_host_files(manager: SessionManager, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("host data")
    code = (
        "import os\n"
        f"os.symlink({str(victim)!r}, 'report.txt')\n"
        "os.symlink('/', 'rootdir')\n"
        "os.mkdir('real'); open('real/ok.txt', 'w').write('fine')"
    )
    result = attack(manager, code, "links")
    assert [rel for rel, _ in result.created] == ["real/ok.txt"]
    assert [p.read_text() for p in result.files] == ["fine"]
    assert all(manager.workdir_for("links") not in p.parents for p in result.files)  # copies, out of reach
    # an attachment named like the planted link replaces the link instead of writing through it
    attachment = tmp_path / "report.txt"
    attachment.write_text("attached")
    result = manager.execute("links", "open('report.txt').read()", [attachment])
    assert result.value == "'attached'"
    assert victim.read_text() == "host data"
    next_run_ok(manager, "links")


def test_rlimits_alone_contain_fork_and_memory_bombs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no cgroup is writable (e.g. not root), the rlimits must still hold."""
    monkeypatch.setattr(sandbox.Cgroup, "create", classmethod(lambda cls, limits, name: cls([], [])))
    tool = CodeInterpreter(limits=LIMITS)
    try:
        result = attack(tool.manager, "import os\nwhile True:\n    os.fork()", "nocg")
        assert result.error
        # One request beyond RLIMIT_AS fails at once, touching no memory (a slow memset could hit the timeout).
        result = attack(tool.manager, "hoard = bytearray(4 << 30)", "nocg")
        assert "MemoryError" in (result.error or "")
        assert tool.manager._sessions["nocg"].proc is not None
        assert not tool.manager._sessions["nocg"].proc.cgroup.active
        next_run_ok(tool.manager, "nocg")
    finally:
        tool.close()
