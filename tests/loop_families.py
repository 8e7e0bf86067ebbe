"""Run one test body under asyncio and under trio, over real websockets connections.

A test parametrized with ``family`` calls ``run(family, body)``: ``body`` runs under
``anyio.run`` on that backend, so it may use anyio's task groups, cancel scopes and
time bounds, which work on both. ``ws_pair(family)`` yields a connected (client,
server) pair of websockets connections of that family on 127.0.0.1 (websockets.asyncio
or websockets.trio), and ``Peer`` drives the raw server side the same way on both.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

FAMILIES = ("asyncio", "trio")

families = pytest.mark.parametrize("family", FAMILIES)
"""Parametrize a test over both loop families."""


def run(family: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body()`` under ``family``'s event loop (anyio.run)."""
    anyio.run(body, backend=family)


class Peer:
    """The raw websockets connection at the other end, driven alike on both families."""

    def __init__(self, connection: Any, family: str) -> None:
        self.connection = connection
        self.family = family

    async def send(self, data: bytes | str) -> None:
        await self.connection.send(data)

    async def recv(self) -> bytes | str:
        with anyio.fail_after(5):
            message: bytes | str = await self.connection.recv()
            return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.family == "trio":
            await self.connection.aclose(code, reason)
        else:
            await self.connection.close(code, reason)

    async def ping(self, data: bytes) -> None:
        """Send a ping and wait for its pong."""
        with anyio.fail_after(5):
            waiter = await self.connection.ping(data)
            if self.family == "trio":
                await waiter.wait()
            else:
                await waiter

    async def pong(self, data: bytes) -> None:
        await self.connection.pong(data)

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.family == "trio":
            import trio

            await trio.aclose_forcefully(self.connection.stream)
        else:
            self.connection.transport.abort()

    def pause_reading(self) -> None:
        if self.family == "trio":
            self.connection.pause_reading()
        else:
            self.connection.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.family == "trio":
            self.connection.resume_reading()
        else:
            self.connection.transport.resume_reading()

    async def wait_closed(self) -> None:
        with anyio.fail_after(5):
            await self.connection.wait_closed()


@asynccontextmanager
async def ws_pair(family: str, **client_options: Any) -> AsyncIterator[tuple[Any, Peer]]:
    """Yield (client connection, Peer of the server side) of ``family`` on loopback."""
    if family == "trio":
        async with _trio_pair(client_options) as pair:
            yield pair
    else:
        from .conftest import ws_pair as asyncio_pair

        async with asyncio_pair(client_options=client_options) as (client, server):
            yield client, Peer(server, family)


@asynccontextmanager
async def _trio_pair(client_options: dict[str, Any]) -> AsyncIterator[tuple[Any, Peer]]:
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
        options = {"compression": None, **client_options}
        async with connect(f"ws://127.0.0.1:{port}", **options) as client:
            with trio.fail_after(5):
                await arrived.wait()
            try:
                yield client, Peer(accepted[0], "trio")
            finally:
                release.set()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def framed_pair(family: str, codec: Any = None) -> AsyncIterator[tuple[Any, Any]]:
    """Yield (client, server) ``Framed`` over WsStreams of a ``family`` loopback pair."""
    from wsframed import Framed, WsStream
    from wsframed.codecs import MsgpackCodec

    codec = codec or MsgpackCodec()
    async with ws_pair(family) as (client, peer):
        yield Framed(WsStream(client), codec), Framed(WsStream(peer.connection), codec)


async def poll(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, checking every 5 ms (bounded), on either family."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


async def ticks_while(call: Callable[[], Awaitable[Any]]) -> tuple[int, BaseException | None]:
    """Run ``call`` beside a task that counts loop turns; the count and what it raised."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    error: BaseException | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await anyio.lowlevel.checkpoint()
        before = ticks
        try:
            await call()
        except Exception as exc:
            error = exc
        group.cancel_scope.cancel()
    return ticks - before, error
