"""Concurrent SSE chats against the server with a SCRIPTED instant model: the latency the server adds.

For each concurrency level N, N chats stream at once over real HTTP on loopback. The reference is the
same turn run in process (run_agent with the same scripted model, no HTTP, no database), measured
side by side in the same run. Targets: p50 added <= 5 ms, and 200 concurrent streams with no errors.

usage: python -m bench.server_load [--levels 1,10,50,200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lector.agent.loop import run_agent
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.tools.registry import ToolRegistry
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, wait_healthy

REPLY = "This is an instant scripted answer streamed in several small pieces. " * 2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def direct_turn(backend: ScriptedBackend) -> float:
    started = time.perf_counter()
    async for _ in run_agent(backend, [Message.user("hi")], ToolRegistry()):
        pass
    return time.perf_counter() - started


async def http_turn(client: httpx.AsyncClient, base: str) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sid = (await client.post(base + "/api/sessions", json={}, headers=headers)).json()["id"]
    started = time.perf_counter()
    async with client.stream("POST", f"{base}/api/sessions/{sid}/chat", json={"content": "hi"}, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}")
        done = False
        async for line in r.aiter_lines():
            if line.startswith("data: ") and '"type": "done"' in line:
                done = True
        if not done:
            raise RuntimeError("stream ended without done")
    return time.perf_counter() - started


async def measure(base: str, level: int, rounds: int) -> tuple[list[float], list[float], int]:
    backend = ScriptedBackend(default=REPLY)
    limits = httpx.Limits(max_connections=level + 10, max_keepalive_connections=level + 10)
    served: list[float] = []
    direct: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for _ in range(rounds):
            results = await asyncio.gather(*(http_turn(client, base) for _ in range(level)), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    errors += 1
                else:
                    served.append(r)
            direct += await asyncio.gather(*(direct_turn(backend) for _ in range(level)))
    return served, direct, errors


def serve(port: int, data_dir: str) -> None:
    """The server under test, in its own process so the load generator doesn't share its GIL."""
    import uvicorn

    config = ServerConfig(
        data_dir=Path(data_dir), port=port, token=TOKEN, tools=[], rate_per_minute=10**7, rate_burst=10**6
    )
    app = create_app(config, backend=ScriptedBackend(default=REPLY))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="1,10,50,200")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    levels = [int(x) for x in args.levels.split(",")]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), tmp])
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base)
            print("Server load: SSE chats with a scripted instant model; reference = the same turn in process")
            print(
                f"{'streams':>8} {'direct p50':>11} {'server p50':>11} {'server p99':>11} "
                f"{'added p50':>10} {'added p99':>10} {'errors':>7}"
            )
            for level in levels:
                served, direct, errors = asyncio.run(measure(base, level, args.rounds))
                d50 = statistics.median(direct) * 1000
                s50, s99 = percentile(served, 0.5) * 1000, percentile(served, 0.99) * 1000
                d99 = percentile(direct, 0.99) * 1000
                print(
                    f"{level:>8} {d50:>9.2f}ms {s50:>9.2f}ms {s99:>9.2f}ms {s50 - d50:>8.2f}ms "
                    f"{s99 - d99:>8.2f}ms {errors:>7}"
                )
            print("targets: added p50 <= 5 ms (single stream), 200 concurrent streams with 0 errors")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
