"""How much a loop-family shell costs on asyncio's hot path: wsframed's own vs anyio's.

The measurement behind the design in docs/trio.md. Under asyncio, each primitive the
stream needs from its loop is timed three ways, best of several rounds, in one process:
what wsframed did before trio support (plain asyncio), what it does now (its own thin
shells: ``wsframed.checkpoint`` detects the family per call, the asyncio shell hands out
asyncio's own futures and tasks), and anyio's equivalent (what an anyio shell would run)::

    python benchmarks/loop_shells.py

The checkpoint runs once per ``BUDGET`` (64) successful calls and on every error; a
waiter (future or event) when a drain() is contended or an event observer waits; a
task per stream (the watcher) and per close.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

N = 20_000
ROUNDS = 5


async def _best(body: Callable[[], Awaitable[None]]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(N):
            await body()
        best = min(best, time.perf_counter() - started)
    return best / N * 1e6  # microseconds per operation


async def measure() -> list[tuple[str, float]]:
    import anyio
    import anyio.lowlevel

    from wsframed.checkpoint import checkpoint

    loop = asyncio.get_running_loop()
    rows: list[tuple[str, float]] = []

    async def sleep0() -> None:
        await asyncio.sleep(0)

    rows.append(("checkpoint: asyncio.sleep(0) (before)", await _best(sleep0)))
    rows.append(("checkpoint: wsframed, trio not imported", await _best(checkpoint)))
    import trio  # noqa: F401  (the family test now makes one more call)

    rows.append(("checkpoint: wsframed, trio imported", await _best(checkpoint)))
    anyio_checkpoint = anyio.lowlevel.checkpoint
    rows.append(("checkpoint: anyio.lowlevel.checkpoint()", await _best(anyio_checkpoint)))

    async def future_waiter() -> None:
        waiter = loop.create_future()
        loop.call_soon(waiter.set_result, None)
        await waiter

    async def anyio_event() -> None:
        event = anyio.Event()
        loop.call_soon(event.set)
        await event.wait()

    rows.append(("waiter: asyncio future (wsframed's asyncio shell)", await _best(future_waiter)))
    rows.append(("waiter: anyio.Event", await _best(anyio_event)))

    async def nothing() -> None:
        pass

    async def asyncio_task() -> None:
        await loop.create_task(nothing())

    async def anyio_task() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(nothing)

    rows.append(("task: loop.create_task (wsframed's asyncio shell)", await _best(asyncio_task)))
    rows.append(("task: anyio task group + start_soon", await _best(anyio_task)))
    return rows


def main() -> int:
    rows = asyncio.run(measure())
    print(f"| asyncio primitive (Python {sys.version.split()[0]}) | us per operation |")
    print("|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
