"""Hostile ingestion: each bomb uploaded to the real server next to a normal page, with a SCRIPTED model.

Per bomb: the peak resident memory of the server process and of its parse workers (its child
processes), the time until the bomb is refused (or read), and the time until a page posted right
after it is ready. Targets: peak RSS under 500 MB, refusal under 5 s, the page ready in under 2 s.

Each case runs in a fresh process (so one case's peak memory is not another's), under an address-space
limit and a timeout, so that code without the protections cannot take the machine down with it.

usage: python -m bench.hostile_ingest [--case NAME] [--memory-limit-mb 4000] [--timeout 60]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.retrieval.bombs import BOMBS, TIME_BOMBS
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE = "<html><body><h1>Otters</h1><p>Sea otters hold hands while they sleep, so they do not drift.</p></body></html>"
MB = 1_000_000
TARGETS = {"peak_rss_mb": 500.0, "refused_s": 5.0, "page_ready_s": 2.0}
WORKER_MODULE = "lector.retrieval.parsers.child"
HARD_TIMEOUT_GRACE = 10.0
"""Seconds past a case's own timeout before its process is killed."""
CASES: dict[str, Callable[[Path], Path]] = {**BOMBS, **TIME_BOMBS}


def _status_kb(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _parse_workers() -> list[int]:
    """This process's children that run the parse worker (not one forked but not yet started, still a copy of us)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            children = [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
        pids += [pid for pid in children if WORKER_MODULE in _command_line(pid)]
    return pids


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


class MemoryWatch:
    """Samples the peak resident memory of this process and of its children while a case runs."""

    def __init__(self) -> None:
        self.worker_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in _parse_workers():
                self.worker_peak_kb = max(self.worker_peak_kb, _status_kb(pid, "VmHWM"))

    def peaks(self) -> dict[str, float]:
        server = _status_kb("self", "VmHWM")
        return {"server_peak_mb": server * 1024 / MB, "worker_peak_mb": self.worker_peak_kb * 1024 / MB}


def _finished(read: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    try:
        item = read()
    except httpx.HTTPError:
        return None
    return item if item.get("status") in ("ready", "error") else None


def _wait_all(
    reads: dict[str, Callable[[], dict[str, Any]]], started: float, timeout: float
) -> dict[str, tuple[dict[str, Any] | None, float]]:
    """Poll every item until each is ready or failed: the item and its seconds since `started`."""
    done: dict[str, tuple[dict[str, Any] | None, float]] = {}
    while len(done) < len(reads) and time.monotonic() - started < timeout:
        for key, read in reads.items():
            if key not in done and (item := _finished(read)) is not None:
                done[key] = (item, time.monotonic() - started)
        time.sleep(0.02)
    return {key: done.get(key, (None, time.monotonic() - started)) for key in reads}


def run_case(name: str, timeout: float) -> dict[str, Any]:
    """Upload one bomb, post a page behind it, and measure; runs in the case's own process."""
    from lector.llm.scripted import ScriptedBackend
    from lector.webui.app import create_app
    from lector.webui.config import ServerConfig

    with tempfile.TemporaryDirectory(prefix="hostile-ingest-") as folder:
        bomb = CASES[name](Path(folder))
        config = ServerConfig(data_dir=Path(folder) / "data", port=free_port(), token=TOKEN, tools=[], rate_burst=1000)
        app = create_app(config, backend=ScriptedBackend(default="Otters [1]."))
        with serve_app(app, config.port) as base, MemoryWatch() as watch:
            row = {"case": name, "bytes": bomb.stat().st_size, **_measure(base, bomb, timeout)}
    return {**row, **watch.peaks()}


def _measure(base: str, bomb: Path, timeout: float) -> dict[str, Any]:
    sid = httpx.post(base + "/api/sessions", json={"title": bomb.name}, headers=AUTH).json()["id"]
    started = time.monotonic()
    with bomb.open("rb") as handle:
        files = {"file": (bomb.name, handle)}
        upload = httpx.post(f"{base}/api/sessions/{sid}/documents", files=files, headers=AUTH, timeout=timeout)
    did = upload.json()["id"]
    page_in = {"url": "https://ex.org/otters", "html": PAGE}
    posted = time.monotonic()
    pid = httpx.post(base + "/pages", json=page_in, headers=AUTH).json()["id"]

    def document() -> dict[str, Any]:
        rows = httpx.get(f"{base}/api/sessions/{sid}", headers=AUTH, timeout=5).json()["documents"]
        return next(d for d in rows if d["id"] == did)  # type: ignore[no-any-return]

    def page() -> dict[str, Any]:
        return httpx.get(f"{base}/pages/{pid}", headers=AUTH, timeout=5).json()  # type: ignore[no-any-return]

    results = _wait_all({"document": document, "page": page}, started, timeout)
    (doc, doc_s), (page_row, page_s) = results["document"], results["page"]
    return {
        "refused_s": doc_s if doc is not None and doc["status"] == "error" else None,
        "outcome": (doc["error"] or "read")[:90] if doc is not None else f"still reading after {doc_s:.0f} s",
        "page_ready_s": page_s - (posted - started) if page_row is not None and page_row["status"] == "ready" else None,
    }


def _limit_memory(megabytes: int) -> Callable[[], None]:
    def apply() -> None:
        limit = megabytes * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_isolated(name: str, memory_mb: int, timeout: float) -> dict[str, Any]:
    """One case in a fresh process under an address-space limit and a hard timeout."""
    command = [sys.executable, "-m", "bench.hostile_ingest", "--case", name, "--timeout", str(timeout)]
    hard = timeout + HARD_TIMEOUT_GRACE
    try:
        limit = _limit_memory(memory_mb)
        done = subprocess.run(command, capture_output=True, text=True, timeout=hard, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"case": name, "outcome": f"the case was killed after {hard:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"case": name, "outcome": f"the server process died (status {done.returncode}): {tail}"[:120]}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _cell(value: Any, unit: str) -> str:
    return "-" if value is None else f"{value:.1f}{unit}" if isinstance(value, float) else str(value)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1000:.0f} kB" if n < MB else f"{n / MB:.1f} MB"


def table(rows: list[dict[str, Any]]) -> str:
    header = "| case | file | server peak RSS | worker peak RSS | refused after | normal page ready | outcome |"
    lines = [header, "|" + "---|" * 7]
    for r in rows:
        peaks = f"{_cell(r.get('server_peak_mb'), ' MB')} | {_cell(r.get('worker_peak_mb'), ' MB')}"
        times = f"{_cell(r.get('refused_s'), ' s')} | {_cell(r.get('page_ready_s'), ' s')}"
        lines.append(f"| {r['case']} | {_size(r.get('bytes'))} | {peaks} | {times} | {r['outcome']} |")
    return "\n".join(lines)


def meets_targets(row: dict[str, Any]) -> bool:
    peak = max(row.get("server_peak_mb") or 0.0, row.get("worker_peak_mb") or 0.0)
    refused, ready = row.get("refused_s"), row.get("page_ready_s")
    return (
        "server_peak_mb" in row
        and peak < TARGETS["peak_rss_mb"]
        and refused is not None
        and refused < TARGETS["refused_s"]
        and ready is not None
        and ready < TARGETS["page_ready_s"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=list(CASES), help="run one case in this process and print it as JSON")
    parser.add_argument("--memory-limit-mb", type=int, default=4000, help="address-space limit of each case")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds each case may take")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.timeout)), flush=True)
        return
    rows = []
    for name in CASES:
        rows.append(run_isolated(name, args.memory_limit_mb, args.timeout))
        print(f"{name}: {rows[-1]['outcome']}", file=sys.stderr, flush=True)
    print(table(rows))
    met = [r["case"] for r in rows if meets_targets(r)]
    print(f"\n{len(met)} of {len(rows)} cases meet every target (peak RSS < 500 MB, refused < 5 s, page ready < 2 s)")


if __name__ == "__main__":
    main()
