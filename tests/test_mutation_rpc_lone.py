"""RpcPeer's lone request waits for a flush in progress (the ``_flushing`` guard of
``call()``'s lone path), over a byte stream whose sends are not serialized for it.

Over a WsStream the stream itself keeps the order (a message skips its write buffer
only while nothing is buffered or being sent), but an anyio byte stream (a TCP
connection, no WebSocket) allows one ``send()`` at a time: a lone request sent while
the writer task's flush waits for the peer to read would be a second ``send()`` at
once, which anyio refuses (``BusyResourceError``), the request lost. Written for a
mutant of wsframed/rpc/peer.py (tools/mutation.py; docs/contributing.md, Testing).
"""

from __future__ import annotations

from typing import Any

import anyio
import msgpack  # type: ignore[import-untyped]
import pytest
from anyio.abc import SocketAttribute, SocketStream

from wsframed import Framed
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import RpcPeer

from .loop_families import families, run

pytestmark = pytest.mark.timeout(120)

WAIT = 60  # seconds: the bound on every wait (the machine is shared)
BIG = 32 * 1024 * 1024  # far more than loopback's socket buffers hold


@families
def test_a_call_during_a_blocked_flush_over_an_anyio_stream_leaves_after_it(
    family: str,
) -> None:
    """The writer is flushing a 32 MiB notification the peer does not read yet; a
    call made then (no call in flight) waits for that flush: the peer reads the
    notification whole, then the request, and the call gets its response."""

    async def body() -> None:
        accepted: list[SocketStream] = []
        connected = anyio.Event()

        async def handle(stream: SocketStream) -> None:
            accepted.append(stream)
            connected.set()
            await anyio.sleep_forever()

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:
                listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
                group.start_soon(listener.serve, handle)
                port = listener.extra(SocketAttribute.local_port)
                stream = await anyio.connect_tcp("127.0.0.1", port)
                codec = MsgpackCodec(max_frame_size=2 * BIG)
                async with RpcPeer(Framed(stream, codec)) as rpc:
                    await connected.wait()
                    peer = accepted[0]
                    await rpc.notify("big", b"x" * BIG)  # the writer task sends it
                    unpacker = msgpack.Unpacker(max_buffer_size=4 * BIG)
                    unpacker.feed(await peer.receive())  # the flush is under way
                    result: list[Any] = []

                    async def call() -> None:
                        result.append(await rpc.call("m", 1))

                    group.start_soon(call)
                    await anyio.wait_all_tasks_blocked()  # the call waits for its turn
                    messages: list[Any] = []
                    while len(messages) < 2:
                        unpacker.feed(await peer.receive())
                        messages.extend(unpacker)
                    assert messages == [[2, "big", [b"x" * BIG]], [0, 0, "m", [1]]]
                    await peer.send(msgpack.packb([1, 0, None, "r"]))
                    while not result:
                        await anyio.sleep(0.01)
                    assert result == ["r"]
                await peer.aclose()
                group.cancel_scope.cancel()

    run(family, body)
