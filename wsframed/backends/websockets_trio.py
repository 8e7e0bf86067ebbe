"""The websockets.trio backend: ``websockets.trio`` client and server connections.

The same adapter as [`backends.websockets`][wsframed.backends.websockets] for websockets'
trio side, which runs the same sans-I/O protocol: the frame observer and the rules for a
clean end are shared with it. Its shell is trio's
([`TrioShell`][wsframed.loops.trio.TrioShell]) over the connection's own nursery, so the
stream's background work ends with the connection.

Differences from the asyncio backend, none visible through the stream's API: messages
are taken one ``recv()`` at a time (no batching of queued messages), and there is no
pong-backlog check (websockets.trio awaits each pong's write before it reads on, so a
peer that does not read is not read either).
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any, TypeGuard

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "wsframed's websockets.trio backend needs trio: pip install 'wsframed[trio]'"
    ) from exc
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.frames import Frame
from websockets.protocol import State
from websockets.trio.connection import Connection

from ..loops.trio import TrioShell
from . import EventSink
from .websockets import WebsocketsBackend, _closed_from, _observe_frames

__all__ = ["WebsocketsTrioBackend", "is_websockets_trio_connection"]


def is_websockets_trio_connection(connection: object) -> TypeGuard[Connection]:
    """Return whether ``connection`` is a ``websockets.trio`` connection."""
    return isinstance(connection, Connection)


def _queued_frames(connection: Connection) -> deque[Frame] | None:
    """websockets.trio's buffer of received frames (inside its memory channel), if found."""
    channel = getattr(connection.recv_messages, "recv_frames", None)
    data = getattr(getattr(channel, "_state", None), "data", None)
    return data if isinstance(data, deque) else None


class WebsocketsTrioBackend(WebsocketsBackend):
    """Adapts a ``websockets.trio`` connection to ``Backend``, with trio's shell.

    The asyncio adapter's methods serve unchanged where both sides of websockets
    have the same API (receiving, sending, the end of the connection); the opening,
    the close, the abort, pings and transport information are trio's.
    """

    def __init__(self, connection: Connection, on_event: EventSink):
        self.connection: Any = connection
        self.shell = TrioShell(connection.nursery)
        """Where the stream's background work runs: the connection's nursery."""
        self.raw_receive = connection.recv
        self.raw_send = connection.send
        self._frames = _queued_frames(connection)
        self._peek_first = None  # peek_end()'s scan state, as in the asyncio adapter
        self._peek_clean = 0
        self.texts_before_wrap = _observe_frames(connection, on_event, self._frames, Connection)
        """Sizes of the text messages queued before the stream existed, in order."""

    async def close(self, code: int, reason: str) -> None:
        await self.connection.aclose(code, reason)

    def abort(self) -> None:
        # Closing the TCP stream ends the connection's reader, which closes the
        # connection (websockets.trio's close_stream()).
        stream = self.connection.stream
        with contextlib.suppress(RuntimeError):  # its nursery is closed: so is the stream
            self.connection.nursery.start_soon(trio.aclose_forcefully, stream)

    async def ping(self, data: bytes) -> float:
        connection = self.connection
        try:
            # ack_on_close: the event is also set when the connection closes first.
            pong = await connection.ping(data or None, ack_on_close=True)
            started = trio.current_time()
            await pong.wait()
        except WsConnectionClosed as exc:
            raise _closed_from(exc) from exc
        if connection.protocol.state is State.CLOSED:
            raise _closed_from(connection.close_exc)
        return trio.current_time() - started

    def extra_info(self, name: str, default: Any) -> Any:
        connection = self.connection
        if name == "connection":
            return connection
        if name == "subprotocol":
            return connection.subprotocol
        if name == "peername":
            return connection.remote_address
        if name == "sockname":
            return connection.local_address
        stream: Any = connection.stream
        if name == "socket":
            while not hasattr(stream, "socket") and hasattr(stream, "transport_stream"):
                stream = stream.transport_stream  # TLS: the socket is below
            return getattr(stream, "socket", default)
        if name == "ssl_object" and isinstance(stream, trio.SSLStream):
            return stream
        return default
