"""Competing CPU load for benchmarks: busy-looping processes started and stopped by the bench itself."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lector.llm.threads import busy_cores, cpu_times

BURN = "while True: pass"
TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def burners(count: int) -> Iterator[list[int]]:
    """`count` CPU-bound processes for the duration of the block; yields their pids."""
    procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(count)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def background_load() -> float:
    """Cores busy right now (everything on the machine, the bench's own burners included)."""
    return busy_cores(0.2)


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


class LoadMeter:
    """Cores kept busy by processes other than this one and `pids` (its burners) between start() and stop()."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._start: tuple[int, int, float, int] = (0, 0, 0.0, 0)

    def _read(self) -> tuple[int, int, float, int]:
        busy, total, _ = cpu_times()
        return busy, total, time.process_time(), sum(_ticks(p) for p in self.pids)

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        busy0, total0, own0, burn0 = self._start
        busy1, total1, own1, burn1 = self._read()
        ticks = total1 - total0
        if ticks <= 0:
            return 0.0
        cpus = cpu_times()[2]
        wall = ticks / cpus / TICKS
        others = (busy1 - busy0) / TICKS - (own1 - own0) - (burn1 - burn0) / TICKS
        return max(0.0, others / wall)
