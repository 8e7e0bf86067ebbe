"""WsStream and Framed under asyncio and under trio: the same transfers, side by side.

Each transfer runs over a websockets loopback pair of its family (websockets.asyncio
under asyncio, websockets.trio under trio), both ends in one process; the figure is the
CPU time of the best of several rounds (on a shared machine wall time measures the
load)::

    python benchmarks/loop_families.py

Transfers: 100,000 small msgpack frames (``send_all`` + ``recv_many``), and 64 MiB of
bytes (``write`` 64 KiB + ``drain`` against ``read(65536)``).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from wsframed import Framed, WsStream
from wsframed.codecs import MsgpackCodec

ITEMS = 100_000
BULK = 64 * 1024 * 1024
CHUNK = 65536
ROUNDS = 5


@asynccontextmanager
async def pair(family: str) -> AsyncIterator[tuple[Any, Any]]:
    """A (client, server) websockets connection pair of ``family`` on 127.0.0.1."""
    if family == "asyncio":
        from wsframed.bench.workloads import ws_pair

        async with ws_pair() as connections:
            yield connections
        return
    import trio
    from websockets.trio.client import connect
    from websockets.trio.server import serve

    accepted: list[Any] = []
    arrived, release = trio.Event(), trio.Event()

    async def handler(connection: Any) -> None:
        accepted.append(connection)
        arrived.set()
        await release.wait()

    async with trio.open_nursery() as nursery:
        start = functools.partial(serve, handler, 0, host="127.0.0.1", compression=None)
        server = await nursery.start(start)
        port = server.listeners[0].socket.getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as client:
            await arrived.wait()
            try:
                yield client, accepted[0]
            finally:
                release.set()
        nursery.cancel_scope.cancel()


async def _both(
    sender: Callable[[], Awaitable[None]], receiver: Callable[[], Awaitable[None]]
) -> float:
    started = time.process_time()
    async with anyio.create_task_group() as group:
        group.start_soon(sender)
        await receiver()
    return time.process_time() - started


async def small_frames(family: str) -> float:
    items = [{"id": i, "method": "add", "params": [i, i + 1]} for i in range(ITEMS)]
    async with pair(family) as (client, server):
        sender = Framed(WsStream(client), MsgpackCodec())
        receiver = Framed(WsStream(server), MsgpackCodec())

        async def receive() -> None:
            count = 0
            while count < ITEMS:
                count += len(await receiver.recv_many())

        return await _both(functools.partial(sender.send_all, items), receive)


async def bulk(family: str) -> float:
    payload = bytes(CHUNK)
    async with pair(family) as (client, server):
        writer, reader = WsStream(client), WsStream(server)

        async def write() -> None:
            for _ in range(BULK // CHUNK):
                writer.write(payload)
                await writer.drain()

        async def read() -> None:
            received = 0
            while received < BULK:
                received += len(await reader.read(CHUNK))

        return await _both(write, read)


def main() -> int:
    rows = []
    for name, transfer, units, unit in (
        ("100,000 msgpack frames", small_frames, ITEMS, "frames/s"),
        ("64 MiB write/drain/read", bulk, BULK / 2**20, "MiB/s"),
    ):
        best = {}
        for family in ("asyncio", "trio"):
            best[family] = min(anyio.run(transfer, family, backend=family) for _ in range(ROUNDS))
        rows.append((name, unit, units / best["asyncio"], units / best["trio"]))
    print(f"| transfer (CPU time, best of {ROUNDS}) | asyncio | trio | trio/asyncio |")
    print("|---|---:|---:|---:|")
    for name, unit, on_asyncio, on_trio in rows:
        print(
            f"| {name} | {on_asyncio:,.0f} {unit} | {on_trio:,.0f} {unit} "
            f"| {on_trio / on_asyncio:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
