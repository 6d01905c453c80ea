"""The REPL worker that runs INSIDE the sandbox (stdlib only; the host passes this source to `python -c`).

Protocol: the host writes requests on fd 0, each "<length>" + newline + marshal data of {"code",
"timeout", "max_output", "max_repr", "max_images"}; the worker answers one JSON line on fd 1 (JSON
because the host must parse what leaves the sandbox safely; marshal is only safe host -> sandbox).
Right at start the worker moves the protocol onto private descriptors and points fds 1 and 2 at
the host's raw-output pipe (so output written straight to the descriptors, or by child processes,
is read and capped by the host), and fd 0 at /dev/null. User code runs in one namespace that
persists between requests, like a notebook cell; when a cell ends, every other process in the
sandbox is killed, so nothing it started (a daemon, a process in its own session) outlives it.
"""

from __future__ import annotations

import _ast  # not `ast`: that pulls in enum and costs a cold start ~15 ms
import builtins
import io
import os
import signal
import sys
import time
import warnings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

MAX_IMAGE_BYTES = 4 << 20
OUTPUT_HARD_CAP_FACTOR = 50
"""Python-level output beyond max_output * this raises inside the user's code."""


class CellTimeout(BaseException):
    """Raised in the user's code by the soft timeout (a BaseException so `except Exception` misses it)."""


class CappedStream(io.TextIOBase):
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.hard_limit = max(limit * OUTPUT_HARD_CAP_FACTOR, 1 << 20)
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self.total += len(s)
        if self.kept < self.limit:
            piece = s[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        if self.total > self.hard_limit:
            raise OSError(f"output limit exceeded ({self.hard_limit} characters)")
        return len(s)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise CellTimeout()


def _split_last_expression(code: str) -> tuple[Any, Any]:
    """(statements code object, last expression code object or None)."""
    tree: Any = compile(code, "<cell>", "exec", _ast.PyCF_ONLY_AST)
    last = None
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        node = tree.body.pop()
        assert isinstance(node, _ast.Expr)
        last = _ast.Expression(node.value)
    body = compile(tree, "<cell>", "exec")
    return body, (compile(last, "<cell>", "eval") if last is not None else None)


def _format_exception(exc: BaseException) -> str:
    import traceback

    tb = exc.__traceback__
    # drop the worker's own frames so the traceback starts in the user's cell
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return "".join(lines).rstrip()


def _collect_figures(max_images: int) -> list[str]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    import base64

    images: list[str] = []
    try:
        for num in plt.get_fignums():
            if len(images) >= max_images:
                break
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
            if buf.tell() > MAX_IMAGE_BYTES:
                sys.stderr.write(f"[figure {num} skipped: its PNG is larger than {MAX_IMAGE_BYTES >> 20} MiB]\n")
                continue
            images.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    finally:
        plt.close("all")
    return images


def _prepare_matplotlib() -> None:
    """Seed matplotlib's writable config dir with the font cache built at setup time."""
    cache = os.environ.get("LECTOR_MPL_CACHE")
    target = os.environ.get("MPLCONFIGDIR")
    if not cache or not target or not os.path.isdir(cache):
        return
    try:
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(cache):
            with open(os.path.join(cache, name), "rb") as src, open(os.path.join(target, name), "wb") as dst:
                dst.write(src.read())
    except OSError:
        pass
    warnings.filterwarnings("ignore", message=".*non-interactive.*")


def _other_processes() -> list[int]:
    me = os.getpid()
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _reap() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except OSError:
            return


def _kill_others() -> bool:
    """SIGKILL every process in this pid namespace but us and bwrap's init; False when there was none."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:  # ESRCH: nothing to signal
        return False
    return True


def _stop_background() -> str:
    """Kill every process in the sandbox but this kernel and bwrap's init, so nothing a cell starts
    outlives it (daemons in their own session included), then reap them.

    The kill itself says whether anything was there: a listing of /proc taken first can miss a grandchild
    forked just after it by a child that then exits. A fork bomb forks while we kill: repeat until the
    kill finds nothing three passes in a row."""
    _reap()
    seen = {pid for pid in _other_processes() if _alive(pid)}
    if not _kill_others():
        return ""
    clean_passes = 0
    for _ in range(500):
        _reap()
        seen.update(pid for pid in _other_processes() if _alive(pid))
        if _kill_others():
            clean_passes = 0
            continue
        clean_passes += 1
        if clean_passes >= 3:
            break
        time.sleep(0.002)
    count = max(len(seen), 1)
    plural = "processes" if count > 1 else "process"
    return f"[the cell left {count} {plural} running in the background: all were killed when it ended]"


def run_cell(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    code = request.get("code", "")
    timeout = float(request.get("timeout", 30))
    max_output = int(request.get("max_output", 20000))
    max_repr = int(request.get("max_repr", 4000))
    max_images = int(request.get("max_images", 8))
    out, err = CappedStream(max_output, "<stdout>"), CappedStream(max_output, "<stderr>")
    result: dict[str, Any] = {"value": None, "error": None, "images": []}
    worker_pid = os.getpid()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.01))
    try:
        try:
            body, last = _split_last_expression(code)
            exec(body, namespace)
            if last is not None:
                value = eval(last, namespace)
                if value is not None:
                    namespace["_"] = value
                    text = repr(value)
                    if len(text) > max_repr:
                        text = text[:max_repr] + f"... [{len(text) - max_repr} more characters]"
                    result["value"] = text
            result["images"] = _collect_figures(max_images)
        except CellTimeout:
            result["error"] = f"TimeoutError: the code ran longer than {timeout:g} s and was interrupted"
            result["timed_out"] = True
        except BaseException as exc:  # the user's SystemExit and KeyboardInterrupt are reported too
            result["error"] = _format_exception(exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CellTimeout:  # the alarm fired between the handlers above
        result["error"] = f"TimeoutError: the code ran longer than {timeout:g} s and was interrupted"
        result["timed_out"] = True
    finally:
        if os.getpid() != worker_pid:
            os._exit(0)  # a fork()ed copy of the worker never answers the host
        sys.stdout, sys.stderr = saved
    note = _stop_background()
    if note:
        err.parts.append(("\n" if err.parts else "") + note)
    if result["images"] == [] and "matplotlib.pyplot" in sys.modules:
        try:
            sys.modules["matplotlib.pyplot"].close("all")
        except Exception:
            pass
    result["stdout"] = out.getvalue()
    result["stderr"] = err.getvalue()
    result["stdout_dropped"] = out.total - out.kept
    result["stderr_dropped"] = err.total - err.kept
    return result


_JSON_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def encode_json(value: Any) -> str:
    """JSON for the few types a reply holds; the `json` module would import `re` on every cold start."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return '"' + value.translate(_JSON_ESCAPES) + '"'
    if isinstance(value, list):
        return "[" + ",".join(encode_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(encode_json(str(k)) + ":" + encode_json(v) for k, v in value.items()) + "}"
    return encode_json(str(value))


def _use_sandbox_site_packages() -> None:
    """The worker runs with -S (site costs a cold start ~5 ms): add the venv's packages by hand."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        sys.prefix = sys.exec_prefix = venv  # what site.py would have done
    path = os.path.join(venv, "lib", version, "site-packages")
    if os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)
    builtins.exit = builtins.quit = sys.exit  # type: ignore[assignment]


def main() -> None:
    import marshal

    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    _use_sandbox_site_packages()
    _prepare_matplotlib()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}

    def send(message: dict[str, Any]) -> None:
        # lone surrogates become backslash-u escapes, which JSON accepts
        data = (encode_json(message) + "\n").encode("utf-8", "backslashreplace")
        view = memoryview(data)
        while view:
            view = view[os.write(proto_out, view) :]

    send({"ready": True, "python": sys.version.split()[0]})
    while True:
        # a request is "<length>\n" then that many bytes of marshal data (the host is trusted)
        header = proto_in.readline()
        if not header:
            return
        payload = proto_in.read(int(header))
        request = marshal.loads(payload)
        send(run_cell(namespace, request))


if __name__ == "__main__":
    main()
