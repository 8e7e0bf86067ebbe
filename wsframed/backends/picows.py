"""The picows backend: a fast WebSocket library for one message per item.

picows (``pip install 'wsframed[picows]'``) parses frames in C and calls a listener for
each one, with no coroutine, queue or lock per message: sending a small message costs
a fraction of what websockets' ``send()`` does. Use it when a peer exchanges one small
message per item (an RPC call, a tick): see docs/backends.md.

picows hands over frames, not messages, and leaves most of the protocol to its user.
[`PicowsConnection`][wsframed.backends.picows.PicowsConnection] is the listener picows
calls; it implements ``Backend`` itself:

- messages: fragments are joined (at most ``max_size`` bytes per message, checked as
  each frame arrives; over it the connection fails with 1009), text is checked to be
  UTF-8 (1007 otherwise). Binary messages that arrive back to back are joined into
  one chunk of up to 16 KiB, so a peer sending one message per item costs one read.
- backpressure: past ``READ_AHEAD`` unread bytes the socket stops being read, so a
  slow reader slows the peer's TCP sender; a send waits while the transport is paused.
- pings: answered here (so each is reported as a ``Ping`` event), and ``ping()`` times
  the round trip with ``time.perf_counter()`` (high resolution on any event loop).
- closing (RFC 6455 section 7): a peer's close frame is echoed; the server drops the
  TCP connection once close frames went both ways, the client waits ``close_timeout``
  for the server to do it. picows silently drops a message sent after a close frame:
  here that is [`BackendClosed`][wsframed.backends.BackendClosed].

What picows cannot do raises at the call: permessage-deflate (``compression``), and
options of websockets' ``connect()``/``serve()`` it has no counterpart for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeGuard

try:
    from picows import (
        WSAutoPingStrategy,
        WSCloseCode,
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
        ws_connect,
        ws_create_server,
    )
except ImportError as exc:  # pragma: no cover - tested by hiding picows
    raise ImportError(
        "wsframed's picows backend needs picows: pip install 'wsframed[picows]'"
    ) from exc

from websockets.datastructures import Headers

try:  # websockets' C masking, as its own frames use; its pure-Python one otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from ..events import CloseFrame, Ping, Pong, TextMessage
from ..request import Request
from . import Backend, BackendClosed, EventSink

__all__ = [
    "MAX_SIZE",
    "READ_AHEAD",
    "PicowsConnection",
    "PicowsServer",
    "is_picows_connection",
    "open_connection",
    "start_server",
]

MAX_SIZE = 1024 * 1024
"""Default largest message accepted, in bytes (websockets' ``max_size`` default)."""

READ_AHEAD = 64 * 1024
"""Unread bytes past which the socket stops being read (resumed below a quarter)."""

READ_BUFFER = 2048
"""picows' first read buffer per connection (it doubles as frames need; picows' own
default, 16 KiB, is most of what an idle connection costs)."""

# Messages held back in one turn of the loop (see _send_binary) are written once this
# many bytes of them wait.
_HOLD_MAX = 64 * 1024
# RFC 6455 section 5.2: a final binary frame's first byte; the payload length in 7 bits,
# or 126 and 16 bits, or 127 and 64 bits; the mask bit (client to server) and its key.
_FIN_BINARY = 0x82
_HEADERS = (struct.Struct(">BB"), struct.Struct(">BBH"), struct.Struct(">BBQ"))
_BATCH_MAX = 16 * 1024  # binary messages arriving back to back are joined up to this
_PONG_BACKLOG_LIMIT = 4 * 1024 * 1024  # as the websockets backend: see there
_NORMAL_CODES = frozenset({1000, 1001, 1005})
# RFC 6455 section 7.4: codes an endpoint may put in a close frame.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})

_BINARY, _TEXT, _CONT = WSMsgType.BINARY, WSMsgType.TEXT, WSMsgType.CONTINUATION
_PING, _PONG, _CLOSE = WSMsgType.PING, WSMsgType.PONG, WSMsgType.CLOSE


def _sendable(code: int) -> bool:
    return code in _SENDABLE or 3000 <= code <= 4999


async def _retrieve(waiting: Awaitable[None]) -> None:
    with contextlib.suppress(Exception):
        await waiting


def is_picows_connection(connection: object) -> TypeGuard[PicowsConnection]:
    """Return whether ``connection`` is a picows connection wsframed can wrap."""
    return isinstance(connection, PicowsConnection)


class PicowsConnection(WSListener):
    """One picows WebSocket connection, as [`WsStream`][wsframed.WsStream] wraps it.

    Made by [`open_connection`][wsframed.backends.picows.open_connection] (client) or
    [`start_server`][wsframed.backends.picows.start_server] (server), or by
    ``wsframed.connect(..., backend="picows")`` / ``wsframed.serve(...,
    backend="picows")``. Messages that arrive before a stream wraps it are kept. One
    stream per connection; the ``Backend`` methods are the stream's to call.
    """

    def __init__(self, *, max_size: int = MAX_SIZE, close_timeout: float = 10.0):
        super().__init__()
        if max_size <= 0:
            raise ValueError(f"max_size must be a positive number of bytes, not {max_size}")
        self.max_size = max_size
        self.close_timeout = close_timeout
        self.transport: WSTransport | None = None
        """picows' ``WSTransport`` once connected."""
        self.request_path = "/"
        """The path of the upgrade request (query string included), as sent."""
        self.subprotocol: str | None = None
        """The subprotocol both sides agreed on, or None."""
        self._loop = asyncio.get_running_loop()
        self._on_event: EventSink | None = None
        self.texts_before_wrap: list[int] = []
        """Sizes of the text messages that arrived before a stream wrapped this."""
        # Messages not yet received: binary messages that arrived back to back as a
        # list of their payloads (a batch, joined when received), a fragmented binary
        # message as one bytearray, a text message as str.
        self._inbox: deque[list[bytes] | bytearray | str] = deque()
        self._inbox_size = 0
        # The batch last in the inbox while binary messages may still join it, and
        # the bytes in it.
        self._batch: list[bytes] | None = None
        self._batch_size = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        # Done while the transport takes writes; pending while it is paused.
        self._write_ready: asyncio.Future[None] = self._loop.create_future()
        self._write_ready.set_result(None)
        self._fragments: bytearray | None = None  # the message being assembled
        self._fragments_text = False
        self._failure: tuple[int, str] | None = None  # what this side failed the peer for
        self._final: BackendClosed | None = None
        self._done = asyncio.Event()
        self._close_timer: asyncio.TimerHandle | None = None
        self._closing = False  # close() was called
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}

    # picows callbacks ------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if transport.is_client_side:
            # picows keeps the reason it failed a client connection for whoever awaits
            # wait_disconnected(); the stream reports it instead, so retrieve it here.
            self._reaper = self._loop.create_task(_retrieve(transport.wait_disconnected()))
        self._sent_this_turn = False  # a message left at once in this turn of the loop
        self._held: list[bytes] = []  # the later ones, held back until the turn ends
        self._held_size = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._failure is not None or (
            transport.is_close_frame_sent and not self._closing and self._picows_failed(transport)
        ):
            return  # nothing the peer sends after its violation counts
        kind = frame.msg_type
        if kind is _BINARY and frame.fin and self._fragments is None:
            # The usual frame, with the fewest calls: its payload (picows checked its
            # size against max_size) joins the open batch, as _received() counts it.
            payload = frame.get_payload_as_bytes()
            size = len(payload)
            batch = self._batch
            if batch is not None and self._batch_size < _BATCH_MAX:
                batch.append(payload)
                self._batch_size += size
            else:
                self._batch = batch = [payload]
                self._batch_size = size
                self._inbox.append(batch)
            unread = self._inbox_size = self._inbox_size + size
            if unread >= READ_AHEAD and not self._reading_paused:
                self._reading_paused = True
                transport.underlying_transport.pause_reading()
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None  # woken: the next frames need not look
                if not waiter.done():
                    waiter.set_result(None)
        elif kind is _BINARY or kind is _TEXT or kind is _CONT:
            self._fragment(frame)
        elif kind is _PING:
            payload = frame.get_payload_as_bytes()
            self._event(Ping(payload))
            transport.send_pong(payload)
            if transport.underlying_transport.get_write_buffer_size() > _PONG_BACKLOG_LIMIT:
                # The peer pings but reads nothing (not even a close frame): drop it.
                transport.disconnect(graceful=False)
        elif kind is _PONG:
            payload = frame.get_payload_as_bytes()
            self._event(Pong(payload))
            self._pong_received(payload)
        elif kind is _CLOSE:
            self._close_received(transport, frame)

    def _picows_failed(self, transport: WSTransport) -> bool:
        """Whether picows failed the connection (it does not tell its listener).

        picows goes on parsing after it sent its close frame for a violation (a frame
        over ``max_frame_size`` is still delivered): what follows is dropped here.
        """
        self._end_from(transport, disconnected=False)
        return self._failure is not None

    def _fragment(self, frame: WSFrame) -> None:
        """A frame of a fragmented message, or a text message (RFC 6455 section 5.4)."""
        kind = frame.msg_type
        parts = self._fragments
        if kind is _CONT:
            if parts is None:
                self._fail(1002, "continuation frame without a message to continue")
                return
        else:
            if parts is not None:
                self._fail(1002, "new data frame inside a fragmented message")
                return
            parts = self._fragments = bytearray()
            self._fragments_text = kind is _TEXT
        size = len(parts) + frame.payload_size
        if size > self.max_size:
            self._fail(1009, f"message of {size}+ bytes exceeds max_size={self.max_size}")
            return
        parts += frame.get_payload_as_memoryview()
        if not frame.fin:
            return
        self._fragments = None
        self._batch = None  # what arrives next goes after this message
        if not self._fragments_text:
            self._inbox.append(parts)
            self._received(size)
            return
        try:
            text = parts.decode()
        except UnicodeDecodeError as exc:
            self._fail(1007, f"invalid UTF-8 at byte {exc.start} of a text message")
            return
        if self._on_event is None:
            self.texts_before_wrap.append(size)
        else:
            self._on_event(TextMessage(size))
        self._inbox.append(text)
        self._received(size)

    def _received(self, size: int) -> None:
        self._inbox_size += size
        transport = self.transport
        if self._inbox_size >= READ_AHEAD and not self._reading_paused and transport is not None:
            self._reading_paused = True
            transport.underlying_transport.pause_reading()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _event(self, event: Any) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _close_received(self, transport: WSTransport, frame: WSFrame) -> None:
        code = frame.get_close_code().value or 1005  # picows reports "no code" as 0
        try:
            reason = frame.get_close_reason() or ""  # None when the frame has none
        except UnicodeDecodeError:  # picows has failed the connection for it already
            return
        self._event(CloseFrame(code, reason))
        if not transport.is_close_frame_sent:
            # RFC 6455 section 5.5.1: echo the status code.
            self._write_held()
            transport.send_close(WSCloseCode(code if _sendable(code) else 1000), reason.encode())
        self._handshake_done(transport)

    def _handshake_done(self, transport: WSTransport) -> None:
        """Close frames went both ways: the server drops TCP, the client waits for it."""
        if not transport.is_client_side:
            transport.disconnect()
        elif self._close_timer is None:  # RFC 6455 section 7.1.1
            self._close_timer = self._loop.call_later(
                self.close_timeout, transport.disconnect, False
            )

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol or a limit: close with ``code`` and drop TCP."""
        transport = self.transport
        if self._failure is None and transport is not None:
            self._failure = (code, reason)
            self._held = []  # the connection fails: nothing more of this side's data
            self._held_size = 0
            transport.send_close(WSCloseCode(code), reason.encode()[:123])
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._final = self._end_from(transport, disconnected=True)
        assert self._final is not None
        self._held = []  # nowhere to write them any more
        self._held_size = 0
        if not self._write_ready.done():
            self._write_ready.set_exception(self._closed_error())
            self._write_ready.exception()  # nobody may be waiting any more
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        pings, self._pings = self._pings, {}
        for future, _ in pings.values():
            if not future.done():
                future.set_exception(self._closed_error())
                future.exception()  # nobody may be waiting any more
        self._done.set()

    def pause_writing(self) -> None:
        if self._write_ready.done():
            self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        if not self._write_ready.done():
            self._write_ready.set_result(None)

    # How it ended ------------------------------------------------------------------

    def _end_from(self, transport: WSTransport, *, disconnected: bool) -> BackendClosed | None:
        handshake = transport.close_handshake
        rcvd = None if handshake is None else handshake.recv
        sent = None if handshake is None else handshake.sent
        if (
            self._failure is None
            and not self._closing
            and sent is not None
            and (rcvd is None or not handshake.recv_then_sent)
        ):
            # This side sent the first close frame, and not through close(): picows
            # failed the connection (a frame over max_size, a protocol violation).
            self._failure = (sent.code.value, sent.reason or "")
        if self._failure is not None:
            code, reason = self._failure
            return BackendClosed(code, reason, clean=False)
        if rcvd is None:
            return BackendClosed(1006, "", clean=False) if disconnected else None
        if sent is None and not disconnected:
            return None
        code = rcvd.code.value or 1005
        started_here = not handshake.recv_then_sent
        clean = sent is not None and (started_here or code in _NORMAL_CODES)
        return BackendClosed(code, rcvd.reason or "", clean=clean)

    def _closed_error(self) -> BackendClosed:
        end = self.ended() or BackendClosed(1006, "", clean=False)
        return BackendClosed(end.code, end.reason, clean=end.clean)

    # Backend ---------------------------------------------------------------------

    def _attach(self, on_event: EventSink) -> Backend:
        if self._on_event is not None:
            raise RuntimeError("this picows connection is already wrapped in a WsStream")
        if self.transport is None:
            raise ValueError("this picows connection is not open yet (no handshake)")
        self._on_event = on_event
        return self

    async def receive(self) -> bytes | str:
        """Return the next message (binary ones arriving together, joined)."""
        inbox = self._inbox
        while not inbox:
            end = self.ended()
            if end is not None:
                raise BackendClosed(end.code, end.reason, clean=end.clean)
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = inbox.popleft()
        data: bytes | str
        if isinstance(message, list):
            if message is self._batch:
                self._batch = None
            data = message[0] if len(message) == 1 else b"".join(message)
            size = len(data)
        elif isinstance(message, str):
            data = message
            size = len(message.encode())  # counted as it arrived: in UTF-8 bytes
        else:
            data = bytes(message)
            size = len(data)
        self._inbox_size -= size
        if self._reading_paused and self._inbox_size < READ_AHEAD // 4:
            self._reading_paused = False
            if self._final is None and self.transport is not None:
                self.transport.underlying_transport.resume_reading()
        return data

    def raw_send(self, data: bytes | bytearray | memoryview) -> asyncio.Future[None]:
        """Send one binary message; return a future done once the transport takes more.

        The stream's fast path: no coroutine per message (awaiting a done future costs
        next to nothing). Raises ``BackendClosed`` at once after a close frame.
        """
        self._send_binary(data)
        ready = self._write_ready
        # Paused: every sender waits on the one future, so a cancelled sender must not
        # cancel it for the others.
        return ready if ready.done() else asyncio.shield(ready)

    def send_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Send one binary message unless the transport is paused; whether it was sent.

        The stream's fastest path, for a frame sent alone (``Framed.send``): nothing to
        await. ``False`` (nothing sent) while the transport is paused: then
        ``raw_send`` sends it and waits. A message that fills the transport's buffer
        is sent and returns ``True``; the next one waits. Raises ``BackendClosed`` at
        once after a close frame.
        """
        if not self._write_ready.done():
            return False
        self._send_binary(data)
        return True

    def _send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message: at once if it is the first of this turn of the
        loop, else held back and written with the others when the turn ends.

        picows writes each message to the socket as it is sent: a system call per
        message. A lone message (a request, a reply) still leaves at once; the rest of a
        burst is framed here and leaves in one write at the end of the turn (or once
        ``_HOLD_MAX`` bytes wait), after the first and in the order sent. A close frame
        goes after what is held (pings and pongs may pass it).
        """
        transport = self.transport
        if self._final is not None or transport is None or transport.is_close_frame_sent:
            raise self._closed_error()
        if not self._sent_this_turn:
            self._sent_this_turn = True
            self._loop.call_soon(self._end_turn)
            transport.send(_BINARY, data)
            return
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse its buffer once this returns
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size >= _HOLD_MAX:
            self._write_held()

    def _write_held(self) -> None:
        """Write the messages held back this turn, as picows would have framed them."""
        held = self._held
        if not held:
            return
        self._held = []
        self._held_size = 0
        transport = self.transport
        if transport is None or transport.is_close_frame_sent or transport.is_disconnected:
            return  # picows failed the connection meanwhile: it drops them too
        parts: list[bytes] = []
        append = parts.append
        short, medium, long = _HEADERS
        if transport.is_client_side:  # RFC 6455 section 5.3: masked, a fresh key each
            keys = os.urandom(4 * len(held))
            for index, payload in enumerate(held):
                size = len(payload)
                if size < 126:
                    append(short.pack(_FIN_BINARY, 0x80 | size))
                elif size < 0x10000:
                    append(medium.pack(_FIN_BINARY, 0xFE, size))
                else:
                    append(long.pack(_FIN_BINARY, 0xFF, size))
                key = keys[4 * index : 4 * index + 4]
                append(key)
                append(apply_mask(payload, key))
        else:
            for payload in held:
                size = len(payload)
                if size < 126:
                    append(short.pack(_FIN_BINARY, size))
                elif size < 0x10000:
                    append(medium.pack(_FIN_BINARY, 126, size))
                else:
                    append(long.pack(_FIN_BINARY, 127, size))
                append(payload)
        transport.underlying_transport.write(b"".join(parts))

    def _end_turn(self) -> None:
        self._write_held()
        self._sent_this_turn = False

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send one binary message; wait while the transport is paused."""
        await self.raw_send(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (unless one was sent) and wait until TCP is closed."""
        self.start_close(code, reason)
        await self._done.wait()

    def start_close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame unless one was sent; ``ValueError`` for what RFC 6455 forbids."""
        transport = self.transport
        if transport is not None and not transport.is_close_frame_sent and self._final is None:
            payload = reason.encode()
            if not _sendable(code) or len(payload) > 123:
                raise ValueError(
                    f"cannot send close code {code} with a {len(payload)}-byte reason "
                    "(RFC 6455: codes 1000-1003, 1007-1014, 3000-4999; at most 123 bytes)"
                )
            self._closing = True
            self._write_held()  # every message sent before the close frame leaves first
            transport.send_close(WSCloseCode(code), payload)
            if self.ended() is not None:  # the peer's close frame came first
                self._handshake_done(transport)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    async def wait_closed(self) -> None:
        await self._done.wait()

    async def ping(self, data: bytes) -> float:
        transport = self.transport
        if transport is None or transport.is_close_frame_sent or self._final is not None:
            raise self._closed_error()
        if data in self._pings:
            raise RuntimeError(f"already waiting for a pong with the payload {data!r}")
        if len(data) > 125:
            raise ValueError(f"a ping carries at most 125 bytes, not {len(data)}")
        future: asyncio.Future[float] = self._loop.create_future()
        self._pings[data] = (future, time.perf_counter())
        transport.send_ping(data)
        return await future

    def _pong_received(self, payload: bytes) -> None:
        if payload not in self._pings:
            return  # unsolicited
        now = time.perf_counter()
        # As websockets does: a pong acknowledges its ping and every earlier one.
        for key in list(self._pings):
            future, sent_at = self._pings.pop(key)
            if not future.done():
                future.set_result(now - sent_at)
            if key == payload:
                break

    def ended(self) -> BackendClosed | None:
        if self._final is not None:
            return self._final
        transport = self.transport
        return None if transport is None else self._end_from(transport, disconnected=False)

    def peek_end(self) -> BackendClosed | None:
        return None if self._inbox else self.ended()

    def closed_with(self) -> tuple[int, str] | None:
        final = self._final
        return None if final is None else (final.code, final.reason)

    @property
    def close_sent(self) -> tuple[int, str] | None:
        """``(code, reason)`` of the close frame this side sent, or None."""
        handshake = None if self.transport is None else self.transport.close_handshake
        sent = None if handshake is None else handshake.sent
        return None if sent is None else (sent.code.value, sent.reason or "")

    @property
    def remote_address(self) -> Any:
        """The peer's address, as websockets' ``remote_address``."""
        return self.extra_info("peername", None)

    def extra_info(self, name: str, default: Any) -> Any:
        if name == "connection":
            return self
        if name == "subprotocol":
            return self.subprotocol
        if self.transport is None:
            return default
        return self.transport.underlying_transport.get_extra_info(name, default)


# Opening connections ---------------------------------------------------------------

_WEBSOCKETS_ONLY = (
    "origin",
    "origins",
    "extensions",
    "process_request",
    "process_response",
    "server_header",
    "user_agent_header",
    "max_queue",
    "write_limit",
    "logger",
    "create_connection",
    "select_subprotocol",
)


def _checked(options: dict[str, Any], call: str) -> dict[str, Any]:
    """The options picows understands; the caller's websockets-only ones raise."""
    compression = options.pop("compression", None)
    if compression is not None:
        raise ValueError(
            f"{call}: picows has no permessage-deflate; pass compression=None "
            "or use the websockets backend"
        )
    for name in options:
        if name in _WEBSOCKETS_ONLY:
            raise TypeError(
                f"{call}: {name!r} is a websockets option the picows backend does not "
                "support; use the websockets backend for it"
            )
    return options


def _keepalive(ping_interval: float | None, ping_timeout: float | None) -> dict[str, Any]:
    if ping_interval is None:
        return {"enable_auto_ping": False}
    return {
        "enable_auto_ping": True,
        "auto_ping_idle_timeout": ping_interval,
        "auto_ping_reply_timeout": ping_timeout if ping_timeout is not None else ping_interval,
        "auto_ping_strategy": WSAutoPingStrategy.PING_PERIODICALLY,
    }


async def open_connection(
    uri: str,
    *,
    subprotocols: Sequence[str] | None = None,
    additional_headers: Any = None,
    max_size: int = MAX_SIZE,
    open_timeout: float | None = 10,
    close_timeout: float = 10.0,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    ssl: Any = None,
    **options: Any,
) -> PicowsConnection:
    """Open a client connection with picows; wrap the result in a [`WsStream`][wsframed.WsStream].

    The options mirror websockets' ``connect()`` where picows has a counterpart
    (``ping_interval``/``ping_timeout`` keep the connection alive as websockets does);
    a websockets-only one, or ``compression`` other than None, raises ``TypeError`` /
    ``ValueError``. Any other keyword goes to picows' ``ws_connect()``.
    """
    options = _checked(options, "open_connection()")
    headers = list(
        additional_headers.items()
        if hasattr(additional_headers, "items")
        else additional_headers or ()
    )
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))

    def listener() -> PicowsConnection:
        return PicowsConnection(max_size=max_size, close_timeout=close_timeout)

    options.setdefault("read_buffer_init_size", READ_BUFFER)
    transport, connection = await ws_connect(
        listener,
        uri,
        ssl_context=ssl,
        websocket_handshake_timeout=open_timeout,
        enable_auto_pong=False,
        max_frame_size=max_size,
        extra_headers=headers or None,
        **_keepalive(ping_interval, ping_timeout),
        **options,
    )
    assert isinstance(connection, PicowsConnection)
    agreed = transport.response.headers.get("Sec-WebSocket-Protocol")
    if agreed is not None and agreed not in (subprotocols or ()):
        transport.disconnect(graceful=False)
        raise ConnectionError(
            f"the server chose the subprotocol {agreed!r}, which was not offered"
        )
    connection.subprotocol = agreed
    return connection


class PicowsServer:
    """A running picows server: the shape of websockets' ``Server`` that wsframed uses."""

    def __init__(self, handler: Callable[[PicowsConnection], Awaitable[None]]):
        self._handler = handler
        self.server: asyncio.Server | None = None
        """The ``asyncio.Server`` picows listens with."""
        self.connections: set[PicowsConnection] = set()
        """The open connections."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.close_task: asyncio.Task[None] | None = None

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        return () if self.server is None else tuple(self.server.sockets)

    def _start(self, connection: PicowsConnection) -> None:
        self.connections.add(connection)
        task = asyncio.get_running_loop().create_task(self._run(connection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, connection: PicowsConnection) -> None:
        try:
            await self._handler(connection)
        finally:
            self.connections.discard(connection)
            connection.abort()  # the handler returned without closing: drop it

    async def serve_forever(self) -> None:
        """Serve until cancelled or closed."""
        assert self.server is not None
        await self.server.serve_forever()

    def close(self, close_connections: bool = True) -> None:
        """Stop listening and, by default, close open connections with 1001."""
        if self.close_task is None:
            self.close_task = asyncio.get_running_loop().create_task(
                self._close(close_connections)
            )

    async def _close(self, close_connections: bool) -> None:
        if self.server is not None:
            self.server.close()
        if close_connections:
            for connection in list(self.connections):
                connection.start_close(1001)  # RFC 6455 section 7.4.1: going away
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def wait_closed(self) -> None:
        """Wait until the server and every connection handler are done."""
        if self.close_task is not None:
            await asyncio.shield(self.close_task)
        if self.server is not None:
            await self.server.wait_closed()


async def start_server(
    handler: Callable[[PicowsConnection], Awaitable[None]],
    host: str | None,
    port: int | None,
    *,
    paths: Collection[str] | None = None,
    subprotocols: Sequence[str] | None = None,
    max_size: int = MAX_SIZE,
    open_timeout: float | None = 10,
    close_timeout: float = 10.0,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    ssl: Any = None,
    **options: Any,
) -> PicowsServer:
    """Listen with picows and run ``handler(connection)`` for each connection.

    ``paths`` (request paths without the query string) refuses any other path with
    HTTP 404; ``subprotocols`` picks the first one the client offers that is in it.
    Other options as in [`open_connection`][wsframed.backends.picows.open_connection].
    When ``handler`` returns the TCP connection is dropped: close the stream first.
    """
    options = _checked(options, "start_server()")
    server = PicowsServer(handler)
    ours = tuple(subprotocols or ())

    def listener(request: WSUpgradeRequest) -> Any:
        path = request.path.decode("latin-1")
        if paths is not None and path.partition("?")[0] not in paths:
            return None  # picows answers 404
        connection = _ServerConnection(
            server, request, max_size=max_size, close_timeout=close_timeout
        )
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        chosen = next((p for p in offered if p in ours), None)
        if chosen is None:
            return connection
        connection.subprotocol = chosen
        response = WSUpgradeResponse.create_101_response(
            extra_headers={"Sec-WebSocket-Protocol": chosen}
        )
        return WSUpgradeResponseWithListener(response, connection)

    options.setdefault("read_buffer_init_size", READ_BUFFER)
    server.server = await ws_create_server(
        listener,
        host,
        port,
        ssl=ssl,
        websocket_handshake_timeout=open_timeout,
        enable_auto_pong=False,
        max_frame_size=max_size,
        **_keepalive(ping_interval, ping_timeout),
        **options,
    )
    return server


class _ServerConnection(PicowsConnection):
    """A server-side connection: starts its handler once the handshake is done."""

    def __init__(self, server: PicowsServer, upgrade: WSUpgradeRequest, **options: Any):
        super().__init__(**options)
        self._server = server
        self._upgrade = upgrade
        self.request_path = upgrade.path.decode("latin-1")

    def http_request(self) -> Request:
        """The upgrade request, as [`framed.request`][wsframed.Framed.request] gives it."""
        target = self.request_path
        path, _, query = target.partition("?")
        headers = Headers(list(self._upgrade.headers.items()))
        return Request(target, path, query, headers, self.remote_address, self.subprotocol)

    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        self._server._start(self)
