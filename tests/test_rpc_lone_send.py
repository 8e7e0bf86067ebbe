"""RpcPeer's lone request: the only call in flight sends at once, as its own message.

With nothing in flight and nothing waiting to be sent, ``call()`` encodes its request
and hands it to the stream on Framed.send's path (``RpcPeer._send_nowait`` /
``_send_lone``) instead of the write buffer and a flush. These pin what the peer sees
around that shortcut: the message itself, its order after frames fed before it, the
request that was cut by a cancellation still leaving whole, and a failed send kept
like a failed flush (every later call raises the same error object).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgpack  # type: ignore[import-untyped]
import pytest

from wsframed import ConnectionClosed, Framed, WsStream
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

from .conftest import ws_pair as plain_ws_pair
from .loop_families import families, run, ws_pair
from .picows_pairs import picows_pair

pytestmark = pytest.mark.timeout(90)

WAIT = 30  # seconds: the bound on every wait (the machine is shared)


@families
def test_a_lone_call_leaves_as_one_message_of_its_own(family: str) -> None:
    async def body() -> None:
        async with (
            ws_pair(family) as (client, peer),
            RpcPeer(Framed(WsStream(client), MsgpackCodec())) as rpc,
        ):
            async with anyio.create_task_group() as group:
                result: list[Any] = []

                async def call() -> None:
                    result.append(await rpc.call("m", 1))

                group.start_soon(call)
                with anyio.fail_after(WAIT):
                    assert await peer.recv() == msgpack.packb([0, 0, "m", [1]])
                    await peer.send(msgpack.packb([1, 0, None, "r"]))
            assert result == ["r"]

    run(family, body)


@families
def test_a_call_after_a_notification_of_the_same_turn_leaves_after_it(family: str) -> None:
    """The notification waits for the writer; the call that follows in the same turn
    is not alone: the notification leaves first."""

    async def body() -> None:
        async with (
            ws_pair(family) as (client, peer),
            RpcPeer(Framed(WsStream(client), MsgpackCodec())) as rpc,
        ):
            async with anyio.create_task_group() as group:
                result: list[Any] = []

                async def notify_then_call() -> None:
                    await rpc.notify("n", 0)
                    result.append(await rpc.call("m", 1))

                group.start_soon(notify_then_call)
                with anyio.fail_after(WAIT):
                    # One message on asyncio; on trio the call's wait for a slot is
                    # a checkpoint, where the writer sends the notification alone.
                    expected = msgpack.packb([2, "n", [0]]) + msgpack.packb([0, 0, "m", [1]])
                    received = b""
                    while len(received) < len(expected):
                        message = await peer.recv()
                        assert isinstance(message, bytes)
                        received += message
                    assert received == expected
                    await peer.send(msgpack.packb([1, 0, None, "r"]))
            assert result == ["r"]

    run(family, body)


def test_a_lone_call_cancelled_while_its_request_waits_still_sends_it_whole() -> None:
    """The peer stops reading; a lone call's request, larger than a message, fills the
    transport and the call is cancelled by a scope. With no other call after it, the
    writer task sends the rest: once the peer reads again it receives the whole
    request, once.

    asyncio only: under trio, websockets.trio drops the connection when a send is
    cancelled part-way through writing a frame (with or without this shortcut)."""
    family = "asyncio"

    async def body() -> None:
        codec = MsgpackCodec(max_frame_size=64 * 1024 * 1024)
        async with ws_pair(family) as (client, peer):
            raw = Framed(WsStream(peer.connection), codec)
            blob = bytes(20 * 1024 * 1024)  # more than loopback's buffers hold
            async with RpcPeer(Framed(WsStream(client), codec)) as rpc:
                with anyio.fail_after(WAIT):
                    peer.pause_reading()
                    with anyio.move_on_after(0.5) as scope:
                        await rpc.call("big", blob)
                    assert scope.cancelled_caught
                    assert rpc.in_flight == 0
                    peer.resume_reading()
                    assert await raw.recv() == [0, 0, "big", [blob]]
                with anyio.move_on_after(0.2):
                    extra = await raw.recv()
                    pytest.fail(f"sent twice: {extra!r}")

    run(family, body)


async def test_a_lone_send_that_fails_at_once_is_kept_like_a_failed_flush() -> None:
    """picows refuses to send after its close frame: the call raises ConnectionClosed,
    and every later call and notification raises that same object."""
    async with picows_pair("picows-client") as (connection, _peer):
        rpc = RpcPeer(Framed(WsStream(connection), MsgpackCodec()))
        async with asyncio.timeout(WAIT):
            connection.transport.send_close()  # under the stream: it still sends whole
            with pytest.raises(ConnectionClosed) as first:
                await rpc.call("m")
            error = first.value
            for _ in range(3):
                with pytest.raises(ConnectionClosed) as later:
                    await rpc.call("m")
                assert later.value is error
                with pytest.raises(ConnectionClosed) as later:
                    await rpc.notify("n")
                assert later.value is error
            assert rpc.in_flight == 0
            await rpc.aclose()


async def test_lone_calls_one_after_another_each_get_their_answer() -> None:
    """Sequential calls over picows: each request leaves alone, each answer matches."""
    async with (
        picows_pair("picows-client") as (connection, peer),
        RpcPeer(Framed(WsStream(connection), MsgpackCodec())) as rpc,
    ):

        async def echo() -> None:
            for _ in range(5):
                request = msgpack.unpackb(await peer.recv())
                await peer.send(msgpack.packb([1, request[1], None, request[3]]))

        async with asyncio.timeout(WAIT), asyncio.TaskGroup() as group:
            group.create_task(echo())
            results = [await rpc.call("echo", i) for i in range(5)]
        assert results == [[0], [1], [2], [3], [4]]


# The response to the reader's only message -------------------------------------------


@asynccontextmanager
async def connection_and_peer(backend: str) -> AsyncIterator[tuple[Any, Any]]:
    """(a connection of ``backend`` to wrap in a WsStream, its websockets peer)."""
    if backend == "picows":
        async with picows_pair("picows-client") as pair:
            yield pair
    else:
        async with plain_ws_pair() as pair:
            yield pair


@pytest.mark.parametrize("backend", ["websockets", "picows"])
async def test_responses_to_requests_of_one_message_leave_together_a_lone_one_alone(
    backend: str,
) -> None:
    """A peer answers a message of three requests with one message of three responses
    (the writer's batch), and a request that came alone at once, alone."""
    async with (
        connection_and_peer(backend) as (connection, peer),
        RpcPeer(Framed(WsStream(connection), MsgpackCodec())) as rpc,
    ):
        rpc.register("echo", lambda value: value)
        async with asyncio.timeout(WAIT):
            await peer.send(b"".join(msgpack.packb([0, i, "echo", [i]]) for i in range(3)))
            assert await peer.recv() == b"".join(msgpack.packb([1, i, None, i]) for i in range(3))
            await peer.send(msgpack.packb([0, 3, "echo", [3]]))
            assert await peer.recv() == msgpack.packb([1, 3, None, 3])
            await peer.send(msgpack.packb([0, 4, "echo", [4]]))
            assert await peer.recv() == msgpack.packb([1, 4, None, 4])


async def test_a_lone_response_that_cannot_be_encoded_is_answered_with_the_error() -> None:
    """The handler's result does not encode: the error response goes instead."""
    async with (
        picows_pair("picows-client") as (connection, peer),
        RpcPeer(Framed(WsStream(connection), MsgpackCodec())) as rpc,
    ):
        rpc.register("bad", lambda: object())
        async with asyncio.timeout(WAIT):
            await peer.send(msgpack.packb([0, 7, "bad", []]))
            response = msgpack.unpackb(await peer.recv())
            assert response[:2] == [1, 7]
            assert response[2].startswith("TypeError: cannot encode the result: ")
            assert response[3] is None
