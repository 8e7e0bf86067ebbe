"""The websockets.trio backend's end of stream behind queued empty messages."""

from __future__ import annotations

import pytest
import trio
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import ServerConnection
from websockets.trio.server import serve as ws_serve

from wsframed import WsStream

pytestmark = pytest.mark.timeout(60)

def test_at_eof_behind_queued_empty_messages_under_trio() -> None:
    """Empty binary messages queued before the end: ``at_eof()`` looks past them (the
    trio backend's scan state was never set: AttributeError)."""
    seen: list[bool] = []

    async def handler(connection: ServerConnection) -> None:
        for _ in range(3):
            await connection.send(b"")
        await connection.send(b"data")
        await connection.aclose()

    async def main() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    lambda task_status: ws_serve(
                        handler, 0, host="127.0.0.1", task_status=task_status
                    )
                )
                port = server.listeners[0].socket.getsockname()[1]
                async with ws_connect(f"ws://127.0.0.1:{port}") as client:
                    stream = WsStream(client)
                    await stream.wait_closed()
                    seen.append(stream.at_eof())  # b"data" is still ahead of the end
                    assert await stream.read(100) == b"data"
                    seen.append(stream.at_eof())
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert seen == [False, True]
