"""An in-memory WebSocket connection: two ends in one process, no socket.

[`MemoryConnection`][wsframed.backends.memory.MemoryConnection] plays the part a
``websockets`` connection plays for [`WsStream`][wsframed.WsStream]: it is at once the
"connection" a user holds and the backend the stream drives, so a stream over it runs
the same code as over the network. [`wsframed.testing`][wsframed.testing] builds
streams and ``Framed`` pairs on it.

The model, and where it departs from a network connection:

- Each direction is a queue of whole messages, bounded by the receiving end's
  ``max_queue`` (messages, as websockets counts its high-water mark). ``send()`` waits
  while the peer's queue is full, so a reader that stops reading stops the writer:
  backpressure, as a full TCP window gives. A message of more than the receiving
  end's ``max_size`` bytes fails the connection as websockets does (RFC 6455 section
  7.4.1, 1009): the receiving end sends a close frame with 1009 and drops the
  connection; the sender's end sees 1009, the receiver's 1006.
- Control frames are handled on arrival, whatever is queued before them: a ping is
  answered at once, and a close frame is answered at once (with the same code and
  reason, as websockets replies), which completes the handshake, so the "TCP
  connection" of both ends is closed at that moment. Messages sent before the close
  stay readable; nothing can be sent after it. (websockets answers a close frame
  only while its queue has room; here the queue never holds the close up.)
- How an end ended follows websockets' rule: clean when close frames went both ways
  and either this end started the close or the peer's code was 1000, 1001 or 1005.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any, TypeGuard

from ..checkpoint import checkpoint
from ..events import CloseFrame, Event, Ping, Pong, TextMessage
from . import BackendClosed, EventSink
from ._pump import NORMAL_CLOSE_CODES

__all__ = ["MemoryConnection", "is_memory_connection", "memory_connection_pair"]

_MESSAGE_TOO_BIG = 1009  # RFC 6455 section 7.4.1
_counter = itertools.count(1)


def _ignore(event: Event) -> None:
    pass


class MemoryConnection:
    """One end of an in-memory WebSocket connection (see the module docstring).

    Made in pairs by [`memory_connection_pair`][wsframed.backends.memory.memory_connection_pair].
    ``WsStream(end)`` wraps one end; the other end may be wrapped too, or driven
    directly with ``send`` (bytes, or ``str`` for a text message), ``receive``,
    ``close`` and ``ping`` to play a peer a ``WsStream`` cannot (one sending text
    messages, for example). An end can be wrapped by one stream only.
    """

    def __init__(self, *, max_queue: int, max_size: int, subprotocol: str | None, name: str):
        if max_queue <= 0:
            raise ValueError(f"max_queue must be a positive number of messages, not {max_queue}")
        if max_size <= 0:
            raise ValueError(f"max_size must be a positive number of bytes, not {max_size}")
        self.max_queue = max_queue
        """The most unread messages this end holds before the peer's ``send`` waits."""
        self.max_size = max_size
        """The largest message this end accepts, in bytes (UTF-8 bytes for text)."""
        self.subprotocol = subprotocol
        self.name = name
        """This end's address for ``get_extra_info("peername")``/``"sockname"``."""
        self.peer: MemoryConnection = self  # set by memory_connection_pair()
        self._on_event: EventSink = _ignore
        self._attached = False
        self._inbox: deque[bytes | str] = deque()
        self._ready = asyncio.Event()  # a message is queued or the connection is over
        self._room = asyncio.Event()  # the inbox is below max_queue
        self._room.set()
        self._close_sent: tuple[int, str] | None = None
        self._close_rcvd: tuple[int, str] | None = None
        self._started_close = False
        self._closed = asyncio.Event()  # the "TCP connection" is gone

    # The other end's view ------------------------------------------------------

    @property
    def queued(self) -> int:
        """How many messages this end has received and not yet read."""
        return len(self._inbox)

    def attach(self, on_event: EventSink) -> MemoryConnection:
        """Report this end's events to ``on_event`` (what ``backend_for`` calls)."""
        if self._attached:
            raise ValueError("this MemoryConnection end is wrapped by a stream already")
        self._attached = True
        self._on_event = on_event
        return self

    @property
    def texts_before_wrap(self) -> list[int]:
        """Sizes of the text messages queued before a stream wrapped this end."""
        return [len(m.encode()) for m in self._inbox if isinstance(m, str)]

    # Backend -------------------------------------------------------------------

    async def receive(self) -> bytes | str:
        """Return the next message; raise ``BackendClosed`` once none is left at the end."""
        await checkpoint()
        while not self._inbox:
            end = self.ended()
            if end is not None:
                raise end
            self._ready.clear()
            await self._ready.wait()
        message = self._inbox.popleft()
        if len(self._inbox) < self.max_queue:
            self._room.set()
        return message

    async def send(self, data: bytes | bytearray | memoryview | str) -> None:
        """Send one message (``str``: a text message); wait while the peer's queue is full."""
        await checkpoint()
        message: bytes | str = data if isinstance(data, str) else bytes(data)
        peer = self.peer
        while True:
            if self._close_sent is not None or self._close_rcvd is not None or self._gone:
                raise self._end_now()
            if len(peer._inbox) < peer.max_queue:
                break
            peer._room.clear()
            room, closed = peer._room.wait(), self._closed.wait()
            waiters = {asyncio.ensure_future(room), asyncio.ensure_future(closed)}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        peer._arrive(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (the peer answers at once), then wait for the end."""
        await checkpoint()
        if self._close_sent is None and not self._gone:
            self._started_close = self._close_rcvd is None
            self._send_close(code, reason)
        await self._closed.wait()

    def abort(self) -> None:
        """Drop the connection at once, both ends, without a close handshake."""
        self._drop()

    async def wait_closed(self) -> None:
        await checkpoint()  # also once closed: a loop around it lets others run
        await self._closed.wait()

    async def ping(self, data: bytes = b"") -> float:
        """Ping the peer, which answers at once; return the round-trip time."""
        await checkpoint()
        if self._close_sent is not None or self._close_rcvd is not None or self._gone:
            raise self._end_now()
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.peer._on_event(Ping(bytes(data)))
        await asyncio.sleep(0)  # the pong comes back after a turn of the loop
        self._on_event(Pong(bytes(data)))
        return loop.time() - start

    def ended(self) -> BackendClosed | None:
        if not self._gone:
            return None
        return self._end_now()

    def peek_end(self) -> BackendClosed | None:
        return None if self._inbox else self.ended()

    def closed_with(self) -> tuple[int, str] | None:
        if not self._gone:
            return None
        return self._close_rcvd or (1006, "")

    def extra_info(self, name: str, default: Any) -> Any:
        if name == "connection":
            return self
        if name == "subprotocol":
            return self.subprotocol
        if name == "sockname":
            return self.name
        if name == "peername":
            return self.peer.name
        return default

    # Internals -----------------------------------------------------------------

    @property
    def _gone(self) -> bool:
        return self._closed.is_set()

    def _end_now(self) -> BackendClosed:
        rcvd, sent = self._close_rcvd, self._close_sent
        if rcvd is None:
            return BackendClosed(1006, "", clean=False)
        clean = sent is not None and (self._started_close or rcvd[0] in NORMAL_CLOSE_CODES)
        return BackendClosed(rcvd[0], rcvd[1], clean=clean)

    def _arrive(self, message: bytes | str) -> None:
        size = len(message.encode()) if isinstance(message, str) else len(message)
        if size > self.max_size:
            # As websockets fails a connection on an oversized message: a close frame
            # with 1009, then the connection is dropped without waiting for the reply.
            close = (_MESSAGE_TOO_BIG, f"message too big: {size} bytes > limit of {self.max_size}")
            self._started_close = True
            self._close_sent = self.peer._close_rcvd = close
            self.peer._on_event(CloseFrame(*close))
            self._drop()
            return
        if isinstance(message, str):
            self._on_event(TextMessage(size))
        self._inbox.append(message)
        if len(self._inbox) >= self.max_queue:
            self._room.clear()
        self._ready.set()

    def _send_close(self, code: int, reason: str) -> None:
        self._close_sent = (code, reason)
        self.peer._close_arrived(code, reason)

    def _close_arrived(self, code: int, reason: str) -> None:
        if self._gone:
            return
        self._close_rcvd = (code, reason)
        self._on_event(CloseFrame(code, reason))
        if self._close_sent is None:
            self._send_close(code, reason)  # the reply completes the handshake...
        else:
            self._drop()  # ...or this was the reply

    def _drop(self) -> None:
        for end in (self, self.peer):
            end._closed.set()
            end._ready.set()
            end._room.set()


def is_memory_connection(connection: object) -> TypeGuard[MemoryConnection]:
    """Return whether ``connection`` is one end of an in-memory connection."""
    return isinstance(connection, MemoryConnection)


def memory_connection_pair(
    *,
    max_queue: int = 16,
    max_size: int = 1024 * 1024,
    subprotocol: str | None = None,
) -> tuple[MemoryConnection, MemoryConnection]:
    """Return the two connected ends of a new in-memory WebSocket connection.

    ``max_queue`` and ``max_size`` apply to each end's receiving side (websockets'
    defaults: 16 messages, 1 MiB). ``subprotocol`` is what both ends report as
    negotiated. Needs no running event loop until used.
    """
    n = next(_counter)
    client = MemoryConnection(
        max_queue=max_queue, max_size=max_size, subprotocol=subprotocol, name=f"memory-{n}-client"
    )
    server = MemoryConnection(
        max_queue=max_queue, max_size=max_size, subprotocol=subprotocol, name=f"memory-{n}-server"
    )
    client.peer, server.peer = server, client
    return client, server
