"""How many CPU threads the embedded engine uses, chosen so that a busy machine slows it, never stalls it.

llama.cpp's threads meet at a barrier after every operation. When one of them shares its core with
another busy process, the others wait for it at every barrier, and generating one token takes hundreds
of them: generation collapses instead of slowing down. Prompt processing works in large batches, with
far fewer barriers per token, and takes a shared core in its stride.

So, unless told otherwise (`--threads N` or `LECTOR_THREADS=N`, for both), the engine reads prompts on every
physical core, and generates on the cores that are free when it loads, less one (at least one: the core left
over is for whatever starts next, the browser showing the answer included), and waits without polling.
Prompts take every core even when some are busy at load: a busy moment at load would otherwise halve prompt
reading for as long as the engine runs, and on a shared core prompt reading slows, it does not collapse
(bench/engine_sweep.py measures both).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "LECTOR_THREADS"
SAMPLE_S = 0.15
"""How long the load is sampled before the engine starts."""
BUSY_SHARE = 0.5
"""A core counts as taken when other processes keep it busy at least this share of the time."""


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    """Threads for generation (one token at a time: the barrier-bound part)."""
    batch_threads: int
    """Threads for prompt processing (large batches)."""
    poll: int
    """llama.cpp's busy-poll level 0-100 while waiting for work; 0 sleeps."""
    reason: str

    def describe(self) -> str:
        return f"{self.threads} thread(s), {self.batch_threads} for prompts, poll {self.poll} ({self.reason})"


def parse_threads(text: str, where: str = ENV) -> int:
    """A positive thread count from a flag or the environment; a clear error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{where} must be a whole number of threads, not {text!r}") from None
    if value < 1:
        raise ValueError(f"{where} must be at least 1, not {value}")
    return value


def choose_threads(requested: int | None, env: str | None, cores: int, busy: float) -> ThreadChoice:
    """The thread settings for `cores` physical cores of which `busy` (core-equivalents) are in use elsewhere.

    An explicit count (`requested`, else `env`) is used for both; otherwise prompts get every core and
    generation one fewer than the free cores, at least one.
    """
    if requested is not None or env:
        count = requested if requested is not None else parse_threads(env or "")
        reason = "set by --threads" if requested is not None else f"set by {ENV}"
        return ThreadChoice(threads=count, batch_threads=count, poll=0, reason=reason)
    free = max(1, cores - int(busy + 1 - BUSY_SHARE))
    reason = f"auto: {cores} core(s), {busy:.1f} busy elsewhere, one kept free for generation"
    return ThreadChoice(threads=max(1, free - 1), batch_threads=max(1, cores), poll=0, reason=reason)


def physical_cores() -> int:
    """Physical cores this process may run on (SMT siblings counted once)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    for cpu in allowed:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:
            cores.add(("", str(cpu)))
    return max(1, len(cores))


def cpu_times() -> tuple[int, int, int]:
    """(busy, total) clock ticks of all CPUs since boot, and the number of CPUs, from /proc/stat."""
    lines = Path("/proc/stat").read_text().splitlines()
    fields = [int(v) for v in lines[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return sum(fields) - idle, sum(fields), cpus


def busy_cores(sample_s: float = SAMPLE_S) -> float:
    """Core-equivalents kept busy by other processes over a short sample (0.0 where it can't be read)."""
    try:
        busy0, total0, cpus = cpu_times()
        own0 = time.process_time()
        time.sleep(sample_s)
        busy1, total1, _ = cpu_times()
        own = time.process_time() - own0
    except (OSError, ValueError, IndexError):
        return 0.0
    if total1 <= total0:
        return 0.0
    share = (busy1 - busy0) / (total1 - total0)
    return max(0.0, share * cpus - own / sample_s)


def resolve_threads(requested: int | None = None) -> ThreadChoice:
    """The choice for this machine now: `requested`, else $LECTOR_THREADS, else sampled from the load."""
    env = os.environ.get(ENV, "").strip() or None
    if requested is not None or env:
        return choose_threads(requested, env, cores=0, busy=0.0)
    return choose_threads(None, None, cores=physical_cores(), busy=busy_cores())
