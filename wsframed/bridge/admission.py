"""Admission: a bridge holds one slot per connection from its TCP accept to its close.

``--max-connections`` must bound what a bridge holds (descriptors, memory), and a
connection costs from the moment it is accepted, long before its WebSocket handshake
completes: a client that connects and never sends its request holds a socket until
websockets' ``open_timeout``. So ``Admission`` counts a connection from the accept:

- a ``ws://`` listener counts it when websockets creates its connection object, which
  asyncio does at the accept (``counted_connection``), and releases it when the
  socket is closed. A connection over the limit never starts the WebSocket handshake:
  its request is read and dropped until its header block ends (``RequestEnd``), then
  it is sent a complete ``HTTP/1.1 503`` response and the end of stream; what it sends
  after is read and dropped for ``LINGER`` more seconds (closing a socket with unread
  bytes sends a TCP reset, which can destroy the response before the client reads
  it), then it is closed. A client whose request has not ended ``LINGER`` seconds
  after the accept, or that ends its stream first, is closed without an answer.
  Answering before the request arrived would break clients that read the response
  only after sending (websockets' asyncio client fails on its own assertion). At most
  ``MAX_LINGERING`` refused connections wait so at a time, the others are closed at
  once.
- a ``tcp://`` listener counts it in the accept callback, before the target is dialled;
  over the limit it is closed at once.
- a ``wss://`` listener counts it at the accept too: the bridge runs the TLS handshake
  itself (``loop.start_tls``) once the connection holds a slot, so one over the limit
  is closed at the accept, before any TLS work (a TLS client cannot read a plain-text
  503, so closing is the answer it gets); a handshake that fails or passes the TLS
  handshake timeout gives its slot back at once.

Refusals are logged at most once per ``LOG_INTERVAL``, with a count of the others.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

from websockets.asyncio.server import ServerConnection

from ..loops import Timer

__all__: list[str] = []  # internal to wsframed.bridge

LINGER = 1.0
"""Seconds a refused connection may take to send its request, then seconds it is read
(and its bytes dropped) after the 503 before it is closed."""

MAX_LINGERING = 64
"""Refused connections that may linger at once; more are closed at once."""

LOG_INTERVAL = 1.0
"""Seconds between two refusal lines in the log."""

_BODY = b"Too many connections, try again later.\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n" + _BODY
)
"""What a WebSocket client over the limit receives, before the end of stream."""

_HEADERS_END = b"\r\n\r\n"


class RequestEnd:
    """Tells when an HTTP request's header block has ended, from its bytes fed in pieces.

    Only the last three bytes are kept, so memory is constant and the time linear in
    the bytes fed, whatever a client sends (a request of any length, or none).
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> bool:
        """True once the bytes fed so far contain the blank line ending the headers."""
        if _HEADERS_END in data or _HEADERS_END in self._tail + data[:3]:
            return True
        self._tail = (self._tail + data[-3:])[-3:]
        return False


class Admission:
    """The slots of one bridge: at most ``limit`` connections held at once."""

    def __init__(
        self,
        limit: int,
        logger: logging.Logger,
        call_later: Callable[[float, Callable[[], None]], Timer] | None = None,
    ):
        self.limit = limit
        self.logger = logger
        self.held: set[object] = set()
        # The loop shell's (by default the running asyncio loop's).
        self._call_later = call_later or asyncio.get_running_loop().call_later
        self._lingering: set[Any] = set()  # asyncio transports, or trio refusal tasks
        self.tls_handshakes: set[asyncio.Transport] = set()
        self._last_log = -LOG_INTERVAL
        self._unlogged = 0
        self._flush: Timer | None = None

    def admit(self, key: object) -> bool:
        """Take a slot for ``key``; False (and nothing taken) when all are held."""
        if len(self.held) >= self.limit:
            return False
        self.held.add(key)
        return True

    def release(self, key: object) -> None:
        """Give back ``key``'s slot (idempotent)."""
        self.held.discard(key)

    def refused(self, peer: str) -> None:
        """Log a refusal: the first in ``LOG_INTERVAL`` by name, the others as a count."""
        now = time.monotonic()
        if now - self._last_log >= LOG_INTERVAL:
            self._last_log = now
            self.logger.warning(
                "refused peer=%s: max-connections (%d) reached", peer, self.limit
            )
            return
        self._unlogged += 1
        if self._flush is None:
            self._flush = self._call_later(
                self._last_log + LOG_INTERVAL - now, self._log_count
            )

    def _log_count(self) -> None:
        self._flush = None
        if self._unlogged:
            count, self._unlogged = self._unlogged, 0
            self._last_log = time.monotonic()
            self.logger.warning(
                "refused %d more connections: max-connections (%d) reached", count, self.limit
            )

    def refuse_http(self, transport: asyncio.BaseTransport) -> HttpRefusal | None:
        """Refuse a ``ws://`` connection (asyncio): answer 503 once its request has
        ended (``HttpRefusal``); None, and closed at once, when ``MAX_LINGERING``
        already wait."""
        if len(self._lingering) >= MAX_LINGERING:
            transport.close()
            return None
        self._lingering.add(transport)
        return HttpRefusal(transport, self._call_later)

    def may_linger(self) -> bool:
        """True while fewer than ``MAX_LINGERING`` refused connections linger."""
        return len(self._lingering) < MAX_LINGERING

    def lingering(self, key: Any) -> None:
        """A refused connection lingers (trio: its refusal task, which ``close()`` cancels)."""
        self._lingering.add(key)

    def lingered(self, transport: Any) -> None:
        """A refused connection is closed."""
        if transport is not None:
            self._lingering.discard(transport)

    def close(self) -> None:
        """Close the refused connections still lingering and the TLS handshakes in
        progress; log the refusals not yet told."""
        for lingering in tuple(self._lingering):  # a transport, or a task
            if hasattr(lingering, "close"):
                lingering.close()
            else:
                lingering.cancel()
        for transport in tuple(self.tls_handshakes):
            transport.abort()
        if self._flush is not None:
            self._flush.cancel()
            self._log_count()


class HttpRefusal:
    """One refused connection of a ``ws://`` listener on asyncio: what it sends is
    dropped; the 503 and the end of stream go once its request has ended, then it is
    closed ``LINGER`` seconds later; without a request ``LINGER`` seconds after the
    accept, it is closed unanswered."""

    __slots__ = ("_call_later", "_request", "_timer", "transport")

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        call_later: Callable[[float, Callable[[], None]], Timer],
    ) -> None:
        self.transport = transport
        self._call_later = call_later
        self._request: RequestEnd | None = RequestEnd()  # None once answered
        self._timer = call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        """Drop ``data``; answer when it ends the request."""
        if self._request is not None and self._request.feed(data):
            self._request = None
            transport = cast(asyncio.WriteTransport, self.transport)  # uvloop's too
            transport.write(REFUSAL)
            if transport.can_write_eof():
                transport.write_eof()
            self._timer.cancel()
            self._timer = self._call_later(LINGER, transport.close)

    def lost(self) -> None:
        """The connection is closed: its timer is no longer needed."""
        self._timer.cancel()


def counted_connection(
    admission: Admission,
    tls: ssl.SSLContext | None = None,
    tls_handshake_timeout: float | None = None,
    tls_shutdown_timeout: float | None = None,
    *,
    loop_tls_timeout: float | None = None,
) -> type[ServerConnection]:
    """A websockets ``ServerConnection`` class that holds a slot of ``admission``.

    websockets creates one per accepted socket (``create_connection=``); the slot is
    taken then and released when the socket is closed. With ``tls`` (the listener's
    server context; websockets itself is then given none), the connection runs the TLS
    handshake itself once it holds a slot, bounded by ``tls_handshake_timeout``, and
    only then starts the WebSocket handshake; a connection over the limit is closed at
    once. ``loop_tls_timeout`` instead tells that the event loop runs the TLS handshake
    (uvloop: its transports deliver bytes before ``start_tls`` can take them): asyncio
    never tells the connection of a failed handshake, so an admitted connection's slot
    is released once that timeout (plus a second) has passed without a
    ``connection_made``.
    """

    class CountedConnection(ServerConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._admitted = admission.admit(self)
            self._refused_transport: asyncio.BaseTransport | None = None
            self._refusal: HttpRefusal | None = None
            self._tls_handshake: asyncio.Task[None] | None = None
            self._expiry: asyncio.TimerHandle | None = None
            self._made = False  # websockets' connection_made() ran
            if self._admitted and loop_tls_timeout is not None:
                self._expiry = asyncio.get_running_loop().call_later(
                    loop_tls_timeout + 1.0, admission.release, self
                )

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if self._expiry is not None:
                self._expiry.cancel()
            if not self._admitted:
                admission.refused(format_address(transport.get_extra_info("peername")))
                if tls is not None:
                    # No TLS work for a connection over the limit.
                    cast(asyncio.Transport, transport).abort()
                    return
                # Never start the WebSocket handshake: answer 503 and close.
                self._refused_transport = transport
                self._refusal = admission.refuse_http(transport)
                return
            if tls is not None and self._tls_handshake is None:
                raw = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
                raw.pause_reading()  # nothing reaches websockets before TLS
                self._tls_handshake = asyncio.get_running_loop().create_task(
                    self._start_tls(raw)
                )
                return
            self._made = True
            super().connection_made(transport)

        async def _start_tls(self, transport: asyncio.Transport) -> None:
            assert tls is not None
            admission.tls_handshakes.add(transport)
            try:
                secure = await asyncio.get_running_loop().start_tls(
                    transport, self, tls, server_side=True,
                    ssl_handshake_timeout=tls_handshake_timeout,
                    ssl_shutdown_timeout=tls_shutdown_timeout,
                )
            except asyncio.CancelledError:  # the bridge is closing
                transport.abort()
                admission.release(self)
                raise
            except Exception:  # failed or timed out: the client's problem, not logged
                transport.abort()
                admission.release(self)
                return
            finally:
                admission.tls_handshakes.discard(transport)
            if secure is None:  # the socket closed during the handshake
                admission.release(self)
                return
            self.connection_made(secure)

        def data_received(self, data: bytes) -> None:
            if self._admitted:
                super().data_received(data)
            elif self._refusal is not None:
                self._refusal.data_received(data)

        def eof_received(self) -> None:
            if self._admitted:
                super().eof_received()
            # Refused: returning None lets the transport close itself.

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                if self._refusal is not None:
                    self._refusal.lost()
                admission.lingered(self._refused_transport)
                return
            try:
                # asyncio's SSLProtocol reports the loss of a connection whose TLS
                # handshake failed: websockets never saw it made, so nothing to end.
                if self._made:
                    super().connection_lost(exc)
            finally:
                admission.release(self)

    return CountedConnection


def format_address(address: Any) -> str:
    """``HOST:PORT`` (``[HOST]:PORT`` for IPv6) of a socket address."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)
