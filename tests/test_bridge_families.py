"""The bridge in-process under both loop families: asyncio and trio (issue 18).

``pump()`` runs each behaviour with the same body under ``anyio.run`` on asyncio (over
websockets.asyncio) and on trio (over websockets.trio), with the TCP side each loop's
own (an asyncio ``(reader, writer)`` pair, a ``trio.SocketStream``) or an anyio byte
stream on either. The far ends are a raw websockets connection (``Peer``) and an anyio
TCP stream. ``wsframed.trio.serve_bridge`` is tested under trio: its nursery, its
``BridgeServer``, closing and cancelling it. The bridge processes of test_bridge.py,
test_bridge_admission.py and test_bridge_failures.py run on both loops too
(``--loop``).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import WsStream
from wsframed.bridge import PumpResult, pump
from wsframed.bridge.pumping import TARGET_FAILED

from .loop_families import Peer, run, ws_pair

pytestmark = pytest.mark.timeout(90)

WAIT = 20  # seconds: the bound on every wait (the machine is shared)

TCP_SIDES = [("asyncio", "asyncio"), ("asyncio", "anyio"), ("trio", "trio"), ("trio", "anyio")]
tcp_sides = pytest.mark.parametrize(("family", "tcp"), TCP_SIDES)
"""Each loop family with its own TCP streams, and with anyio's."""


@asynccontextmanager
async def tcp_pair(tcp: str) -> AsyncIterator[tuple[anyio.abc.SocketStream, tuple[Any, ...]]]:
    """(the far end as an anyio stream, the pump's side as ``pump()`` takes it)."""
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with multi:
        listener = multi.listeners[0]
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        ours: tuple[Any, ...]
        if tcp == "asyncio":
            ours = await asyncio.open_connection("127.0.0.1", port)
        elif tcp == "trio":
            import trio

            ours = (await trio.open_tcp_stream("127.0.0.1", port),)
        else:
            ours = (await anyio.connect_tcp("127.0.0.1", port),)
        with anyio.fail_after(WAIT):
            far = await listener.accept()
        async with far:
            yield far, ours


async def read_to_eof(stream: anyio.abc.ByteReceiveStream) -> bytes:
    data = b""
    with anyio.fail_after(WAIT):
        while True:
            try:
                data += await stream.receive()
            except anyio.EndOfStream:
                return data


async def read_exactly(stream: anyio.abc.ByteReceiveStream, size: int) -> bytes:
    data = b""
    with anyio.fail_after(WAIT):
        while len(data) < size:
            data += await stream.receive(size - len(data))
    return data


async def closed_with(peer: Peer) -> tuple[int, str]:
    """Read the raw peer until its connection closes; the close frame it received."""
    with anyio.fail_after(WAIT):
        while True:
            try:
                await peer.connection.recv()
            except WsConnectionClosed as exc:
                received = exc.rcvd
                break
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


async def pumping(
    results: list[PumpResult], ws: WsStream, ours: tuple[Any, ...], options: dict[str, Any]
) -> None:
    with anyio.fail_after(WAIT):
        results.append(await pump(ws, *ours, **options))


@tcp_sides
def test_pump_moves_bytes_counts_them_and_closes_on_idle(family: str, tcp: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {"idle_timeout": 0.3})
                await peer.send(b"to tcp")
                assert await read_exactly(far, 6) == b"to tcp"
                await far.send(b"to the websocket")
                assert await peer.recv() == b"to the websocket"
                assert await closed_with(peer) == (1001, "idle timeout")
                assert await read_to_eof(far) == b""
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (6, 16)
            assert (result.close_code, result.reason) == (1001, "idle timeout")

    run(family, body)


@tcp_sides
def test_a_target_reset_closes_the_websocket_with_1011_and_the_reason(
    family: str, tcp: str
) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"hello")
                assert await read_exactly(far, 5) == b"hello"
                raw = far.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await far.aclose()  # SO_LINGER 0: a reset
                assert await closed_with(peer) == (1011, TARGET_FAILED)
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (5, 0)
            assert result.close_code == 1011
            assert result.reason == "target failed: connection reset by peer"

    run(family, body)


@tcp_sides
def test_cancelling_the_pump_closes_the_websocket_with_1001_and_tcp(
    family: str, tcp: str
) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"before")
                assert await read_exactly(far, 6) == b"before"
                group.cancel_scope.cancel()
            assert results == []  # the cancellation went through
            assert await closed_with(peer) == (1001, "going away")
            assert await read_to_eof(far) == b""

    run(family, body)


@tcp_sides
def test_half_close_markers_end_each_direction_after_its_bytes(family: str, tcp: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            await peer.send(b"bytes ahead of the marker")
            await peer.send("EOF")  # sent before the pump starts: not missed
            stream = WsStream(client, text="ignore")
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, stream, ours, {"half_close": True})
                assert await read_to_eof(far) == b"bytes ahead of the marker"
                await far.send(b"reply")
                await far.send_eof()
                assert await peer.recv() == b"reply"
                assert await peer.recv() == "EOF"
                await peer.close()
            [result] = results
            assert (result.ws_to_tcp, result.tcp_to_ws) == (25, 5)
            assert (result.close_code, result.reason) == (1000, "both sides finished")

    run(family, body)


@tcp_sides
def test_a_text_message_is_rejected_with_1003_after_the_bytes_before_it(
    family: str, tcp: str
) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer), tcp_pair(tcp) as (far, ours):
            results: list[PumpResult] = []
            async with anyio.create_task_group() as group:
                group.start_soon(pumping, results, WsStream(client), ours, {})
                await peer.send(b"abc")
                await peer.send("text")
                assert await read_to_eof(far) == b"abc"
                assert (await closed_with(peer))[0] == 1003
            [result] = results
            assert (result.ws_to_tcp, result.close_code) == (3, 1003)
            assert result.reason == "text message rejected"

    run(family, body)


# wsframed.trio.serve_bridge ------------------------------------------------------------


async def serve_tcp_on_loopback(handler: Any, *, task_status: Any) -> None:
    import trio

    await trio.serve_tcp(handler, 0, host="127.0.0.1", task_status=task_status)


@pytest.mark.parametrize("listen", ["ws", "tcp"])
def test_trio_serve_bridge_runs_in_the_nursery_and_close_ends_it(listen: str) -> None:
    import trio
    from websockets.trio.client import connect
    from websockets.trio.server import serve

    import wsframed.trio

    async def echo_tcp(stream: trio.SocketStream) -> None:
        async for data in stream:
            await stream.send_all(data)

    async def echo_ws(connection: Any) -> None:
        async for message in connection:
            await connection.send(message)

    async def main() -> None:
        async with trio.open_nursery() as targets:
            if listen == "ws":
                tcp = (await targets.start(serve_tcp_on_loopback, echo_tcp))[0]
                to = f"tcp://127.0.0.1:{tcp.socket.getsockname()[1]}"
            else:
                server = await targets.start(
                    lambda task_status: serve(echo_ws, 0, host="127.0.0.1",
                                              task_status=task_status)
                )
                to = f"ws://127.0.0.1:{server.listeners[0].socket.getsockname()[1]}"
            with trio.fail_after(WAIT):
                async with trio.open_nursery() as nursery:
                    bridge = await nursery.start(
                        wsframed.trio.serve_bridge, f"{listen}://127.0.0.1:0", to
                    )
                    bound = bridge.sockets[0].getsockname()[1]
                    assert bridge.port == bound
                    assert bridge.url == f"{listen}://127.0.0.1:{bound}"
                    if listen == "ws":
                        async with connect(bridge.url) as client:
                            await client.send(b"through")
                            assert await client.recv() == b"through"
                            assert bridge.active_connections == 1
                            bridge.close()
                            with pytest.raises(WsConnectionClosed) as info:
                                await client.recv()
                            assert info.value.rcvd is not None
                            assert (info.value.rcvd.code, info.value.rcvd.reason) == (
                                1001, "bridge shutting down"
                            )
                    else:
                        client = await trio.open_tcp_stream("127.0.0.1", bridge.port)
                        await client.send_all(b"through")
                        assert await client.receive_some() == b"through"
                        assert bridge.active_connections == 1
                        bridge.close()
                        assert await client.receive_some() == b""  # closed by the bridge
                        await client.aclose()
                    await bridge.wait_closed()
                # serve_bridge() returned by itself: the nursery was not cancelled
                assert not nursery.cancel_scope.cancel_called
            assert bridge.sockets == ()
            assert (bridge.port, bridge.active_connections) == (bound, 0)
            targets.cancel_scope.cancel()

    trio.run(main)


def test_cancelling_trio_serve_bridge_closes_its_connections_with_1001() -> None:
    import trio
    from websockets.trio.client import connect

    import wsframed.trio

    async def echo_tcp(stream: trio.SocketStream) -> None:
        async for data in stream:
            await stream.send_all(data)

    async def main() -> None:
        async with trio.open_nursery() as targets:
            tcp = (await targets.start(serve_tcp_on_loopback, echo_tcp))[0]
            to = f"tcp://127.0.0.1:{tcp.socket.getsockname()[1]}"
            async with trio.open_nursery() as nursery:
                bridge = await nursery.start(wsframed.trio.serve_bridge, "ws://127.0.0.1:0", to)
                async with connect(bridge.url) as client:
                    await client.send(b"x")
                    assert await client.recv() == b"x"
                    nursery.cancel_scope.cancel()
                    with trio.fail_after(WAIT), pytest.raises(WsConnectionClosed) as info:
                        await client.recv()
                    assert info.value.rcvd is not None
                    assert info.value.rcvd.code == 1001
            assert bridge.active_connections == 0
            targets.cancel_scope.cancel()

    trio.run(main)


def test_trio_serve_bridge_refuses_bad_urls_before_listening() -> None:
    import trio

    import wsframed.trio

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            with pytest.raises(ValueError, match="a bridge joins a WebSocket and TCP"):
                await nursery.start(
                    wsframed.trio.serve_bridge, "ws://127.0.0.1:0", "ws://127.0.0.1:1"
                )

    trio.run(main)
