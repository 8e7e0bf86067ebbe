"""Every public coroutine of RpcPeer and serve() yields when it raises without waiting.

A retry loop around a call that fails at once must still let other tasks run, and a
timeout around it fire (wsframed/checkpoint.py). A ticker task counts the turns of the
event loop it gets while the loop under test runs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import wsframed
from wsframed import ClosedStreamError, ConnectionClosed, Framed
from wsframed.checkpoint import BUDGET
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

from .conftest import framed_pair, wait_for

pytestmark = pytest.mark.timeout(60)

ROUNDS = 20


@asynccontextmanager
async def ticker() -> AsyncIterator[Callable[[], int]]:
    """Yield a function returning how many turns a busy ticker task has had."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)  # started, now waiting for its next turn
    try:
        yield lambda: ticks
    finally:
        task.cancel()


async def turns_while_failing(
    attempt: Callable[[], Awaitable[Any]], error: type[BaseException]
) -> tuple[int, set[int]]:
    """Run ``attempt`` ROUNDS times, each raising ``error``; the ticker's turns meanwhile
    and the ids of the errors raised."""
    raised: set[int] = set()
    async with ticker() as ticks:
        before = ticks()
        for _ in range(ROUNDS):
            with pytest.raises(error) as info:
                await attempt()
            raised.add(id(info.value))
        return ticks() - before, raised


async def test_calls_on_a_closed_peer_yield_once_per_error() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (a, _):
        peer = RpcPeer(a)
        await peer.aclose()
        for attempt in (lambda: peer.call("m"), lambda: peer.notify("m"), peer.serve):
            turns, _ = await turns_while_failing(attempt, ClosedStreamError)
            assert turns == ROUNDS


async def test_calls_on_an_ended_connection_yield_and_raise_one_error() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (a, b), RpcPeer(a) as peer:
        await b.aclose()
        await wait_for(lambda: peer._ended is not None)
        for attempt in (lambda: peer.call("m"), lambda: peer.notify("m")):
            turns, raised = await turns_while_failing(attempt, ConnectionClosed)
            assert turns == ROUNDS
            assert raised == {id(peer._ended)}


async def test_unencodable_params_yield_before_raising() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (a, _), RpcPeer(a) as peer:
        for attempt in (lambda: peer.call("m", object()), lambda: peer.notify("m", object())):
            turns, _ = await turns_while_failing(attempt, TypeError)
            assert turns == ROUNDS


async def test_a_loop_of_notifications_lets_the_loop_run() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (a, b), RpcPeer(a) as peer:
        async with ticker() as ticks:
            before = ticks()
            for i in range(10 * BUDGET):
                await peer.notify("n", i)
            assert ticks() - before >= 10  # at least once per BUDGET notifications
        assert [await b.recv() for _ in range(10 * BUDGET)] == [
            [2, "n", [i]] for i in range(10 * BUDGET)
        ]


async def test_serve_forever_on_a_closed_server_yields_before_raising() -> None:
    async def handler(framed: Framed[Any]) -> None:
        pass

    server = await wsframed.serve(handler, "127.0.0.1", 0, codec=MsgpackCodec())
    server.close()
    await server.wait_closed()
    turns, _ = await turns_while_failing(server.serve_forever, RuntimeError)
    assert turns == ROUNDS


async def test_serving_on_a_port_in_use_yields_before_raising() -> None:
    async def handler(framed: Framed[Any]) -> None:
        pass

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def attempt() -> None:
            await wsframed.serve(handler, "127.0.0.1", port, codec=MsgpackCodec())

        turns, _ = await turns_while_failing(attempt, OSError)
    assert turns >= ROUNDS
