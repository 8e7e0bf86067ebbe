"""RPC over reconnects (examples/rpc_reconnect.py): what happens to calls in flight."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Generator
from typing import Any

import pytest

import wsframed
from wsframed import ConnectionClosed, Framed
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

pytestmark = pytest.mark.timeout(60)
WAIT = 20.0


async def test_the_example_retries_the_call_lost_with_the_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from examples.rpc_reconnect import main

    await asyncio.wait_for(main(), WAIT)
    lines = capsys.readouterr().out.splitlines()
    # The client's line and the server's come from two tasks: their order may vary.
    assert sorted(lines[:3]) == [
        "connection 1 lost (1001) with a call in flight",
        "server back",
        "server dropped",
    ]
    assert lines.index("server dropped") < lines.index("server back")
    assert lines[3:] == ["results {1: 1, 2: 4, 3: 9, 4: 16} over 2 connections"]


def quick() -> Generator[float]:
    return (0.01 for _ in itertools.count())


async def test_a_dropped_tcp_connection_fails_the_call_in_flight_with_1006() -> None:
    """The server ran the call, the client never got the answer: retrying runs it twice."""
    ran: list[int] = []
    connections = itertools.count(1)

    async def handler(framed: Framed[Any]) -> None:
        number = next(connections)
        peer = RpcPeer(framed)

        @peer.method
        def square(n: int) -> int:
            ran.append(n)
            if number == 1:  # the first connection breaks before the answer leaves
                framed.stream.get_extra_info("connection").transport.abort()
            return n * n

        await peer.serve()

    failures: list[tuple[int, str]] = []
    results: list[int] = []
    async with wsframed.serve(handler, "127.0.0.1", 0, MsgpackCodec()) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with asyncio.timeout(WAIT):
            async for framed in wsframed.connect(url, MsgpackCodec(), reconnect_delays=quick):
                async with RpcPeer(framed) as peer:
                    try:
                        results.append(await peer.call("square", 7, timeout=5))
                    except ConnectionClosed as exc:
                        failures.append((exc.code, exc.reason))
                        with pytest.raises(ConnectionClosed):  # the peer is done for good
                            await peer.call("square", 8, timeout=5)
                        continue
                await framed.aclose()
                break
    assert failures == [(1006, "")]
    assert results == [49]
    assert ran == [7, 7]  # at least once, not exactly once
