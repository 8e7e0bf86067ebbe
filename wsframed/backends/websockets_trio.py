"""The websockets.trio backend: ``websockets.trio`` client and server connections.

The same adapter as [`backends.websockets`][wsframed.backends.websockets] for websockets'
trio side, which runs the same sans-I/O protocol: the frame observer and the rules for a
clean end are shared with it. Its shell is trio's
([`TrioShell`][wsframed.loops.trio.TrioShell]) over the connection's own nursery, so the
stream's background work ends with the connection.

Differences from the asyncio backend, none visible through the stream's API: messages
are taken one ``recv()`` at a time (no batching of queued messages), and the connection's
reader never waits to write (`_reader_never_writes()`), with the same pong-backlog limit.
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
from .websockets import _PONG_BACKLOG_LIMIT, WebsocketsBackend, _closed_from, _observe_frames

__all__ = ["WebsocketsTrioBackend", "is_websockets_trio_connection"]


def is_websockets_trio_connection(connection: object) -> TypeGuard[Connection]:
    """Return whether ``connection`` is a ``websockets.trio`` connection."""
    return isinstance(connection, Connection)


def _queued_frames(connection: Connection) -> deque[Frame] | None:
    """websockets.trio's buffer of received frames (inside its memory channel), if found."""
    channel = getattr(connection.recv_messages, "recv_frames", None)
    data = getattr(getattr(channel, "_state", None), "data", None)
    return data if isinstance(data, deque) else None


# What one queued write costs besides its bytes: a bytes object's header and its slot
# in websockets' list of pending writes (an empty pong is 2 bytes, held in 43).
_WRITE_OVERHEAD = 48


def _reader_never_writes(connection: Any) -> None:
    """Make the connection's reader hand its writes to a task instead of awaiting them.

    websockets.trio's reader (``recv_events``) calls ``send_data()`` after each read of
    the socket: it takes the send lock and writes everything queued, its own replies
    (pongs, the close frame) and a ``send()``'s frame queued behind a held lock alike.
    While a ``send()`` holds the lock, waiting for a peer that does not read, the reader
    waits too; holding the lock, it writes another task's frame and waits for the peer.
    Two such ends that both send and read more than the socket buffers hold then wait
    on each other for ever, each reader stuck behind its own writes.

    Here the reader's call returns at once: what it queued is written by a flusher
    task in the connection's nursery, under the same lock and in queue order, so the
    wire order is websockets' own. Every other ``send_data()`` caller (``send()``,
    ``ping()``, ``aclose()``, the end of the connection) still writes and waits itself.
    A peer that pings and does not read is no longer held back by an unread pong, so
    the replies the reader queues are counted, as the asyncio backend counts its write
    buffer: past ``_PONG_BACKLOG_LIMIT`` bytes the connection is dropped.
    """
    protocol = connection.protocol
    receive_data = protocol.receive_data
    send_data = connection.send_data  # websockets' own, bound
    reading = False  # receive_data() ran: the next send_data() call is the reader's
    flushing = False  # a flusher task is running
    counted: list[bytes] | None = None  # protocol.writes when `backlog` was counted
    backlog = 0  # bytes the reader queued in `counted`, with _WRITE_OVERHEAD each

    def receive(data: bytes | bytearray) -> None:
        nonlocal reading, counted, backlog
        before = len(protocol.writes)
        receive_data(data)
        reading = True
        writes = protocol.writes  # the same list: only data_to_send() replaces it
        if len(writes) == before:  # nearly every read: data frames, no reply
            return
        if writes is not counted:  # written since: the count starts again
            counted, backlog = writes, 0
        for item in writes[before:]:
            backlog += len(item) + _WRITE_OVERHEAD
        if backlog > _PONG_BACKLOG_LIMIT:
            # The peer sends pings (or closes) faster than it reads our replies.
            connection.set_connection_exc(
                ConnectionError(
                    f"the peer does not read: {backlog} bytes of replies to its "
                    f"control frames queued, limit {_PONG_BACKLOG_LIMIT}"
                )
            )
            with contextlib.suppress(RuntimeError):  # the nursery is closed
                connection.nursery.start_soon(trio.aclose_forcefully, connection.stream)

    async def flush() -> None:
        nonlocal flushing
        try:
            while protocol.writes:
                await send_data()
        except Exception as exc:  # what the reader does when its write fails
            connection.set_connection_exc(exc)
            await connection.close_stream()
        finally:
            flushing = False

    async def send_data_unless_reading() -> None:
        nonlocal reading, flushing
        if not reading:
            await send_data()
            return
        reading = False
        if protocol.writes and not flushing:
            flushing = True
            connection.nursery.start_soon(flush)

    # Instance attributes shadow the methods: recv_events() calls
    # self.protocol.receive_data() then self.send_data() with no await between.
    protocol.receive_data = receive
    connection.send_data = send_data_unless_reading


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
        _reader_never_writes(connection)

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
