"""The aiohttp backend: server ``web.WebSocketResponse`` and client ``ClientWebSocketResponse``.

aiohttp reports control frames, the peer's close and the end of the connection only
through ``receive()``, so this backend runs it in a pump task that reads ahead of
the reader until 64 KiB are waiting (see ``wsframed.backends._pump``).

Closing. aiohttp's ``close()`` sends a close frame, then reads and *drops* every
message until the peer's close arrives. This backend does not call it: it sends the
close frame itself with the public ``send_frame(..., WSMsgType.CLOSE)`` and keeps
reading, so every byte the peer sent before its close reply is still delivered, as
with websockets. When the reply arrives, aiohttp's own close handling (``autoclose``)
completes the handshake and closes the TCP connection; because aiohttp does not know
the first close frame was sent, it sends a second one, which the peer discards
(RFC 6455 section 5.5.1: nothing follows a close frame).

Pings. With aiohttp's default ``autoping=True``, aiohttp answers pings and drops
pongs inside ``receive()``: no Ping/Pong events, and ``AiohttpBackend.ping``
raises ``NotImplementedError``. Created with ``autoping=False``, the connection hands
them over: this backend answers pings itself, emits the events, and measures pings.

Two private attributes are read, both on the server and the client class, and both
checked with a fallback: ``_autoping`` (whether aiohttp consumes pongs) and
``_writer.transport`` (to drop the TCP connection when a close times out).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import weakref
from typing import Any, TypeGuard

try:
    from aiohttp import ClientWebSocketResponse, WebSocketError, WSMsgType, web
except ImportError as exc:  # pragma: no cover - tested by hiding aiohttp
    raise ImportError(
        "wsframed's aiohttp backend needs aiohttp: pip install 'wsframed[aiohttp]'"
    ) from exc

from websockets.datastructures import Headers

from ..events import CloseFrame, Ping, Pong
from ..request import Request
from . import EventSink
from ._pump import NORMAL_CLOSE_CODES, PumpedBackend

__all__ = ["AiohttpBackend", "AiohttpConnection", "aiohttp_request", "is_aiohttp_connection"]

AiohttpConnection = web.WebSocketResponse[Any] | ClientWebSocketResponse[Any]
"""The aiohttp objects a [`WsStream`][wsframed.WsStream] accepts."""

# RFC 6455 section 7.4: codes an endpoint may put in a close frame.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def _sendable(code: int) -> bool:
    return code in _SENDABLE or 3000 <= code <= 4999


def is_aiohttp_connection(connection: object) -> TypeGuard[AiohttpConnection]:
    """Return whether ``connection`` is an aiohttp WebSocket (server or client side)."""
    return isinstance(connection, web.WebSocketResponse | ClientWebSocketResponse)


_requests: weakref.WeakKeyDictionary[web.WebSocketResponse, Request] = weakref.WeakKeyDictionary()


def aiohttp_request(connection: object) -> Request | None:
    """The [`Request`][wsframed.Request] of a prepared server-side ``WebSocketResponse``.

    aiohttp's response keeps its request only until the connection closes (and in a
    private attribute), so the first call, made when a stream wraps the response,
    keeps a copy for the connection's lifetime. ``None`` on the client side.
    """
    if not isinstance(connection, web.WebSocketResponse):
        return None
    request = _requests.get(connection)
    if request is None:
        http = getattr(connection, "_req", None)  # set by prepare(), cleared at close
        if not isinstance(http, web.BaseRequest):
            return None
        transport = http.transport
        request = Request.from_target(
            http.raw_path,
            Headers(http.headers.items()),
            None if transport is None else transport.get_extra_info("peername"),
            connection.ws_protocol,
        )
        _requests[connection] = request
    return request


class AiohttpBackend(PumpedBackend):
    """Adapts an aiohttp WebSocket to ``Backend``.

    A server-side ``WebSocketResponse`` must be prepared (``await ws.prepare(request)``)
    first. Once wrapped, the stream owns the connection: do not call the aiohttp
    object's ``receive()`` or ``close()`` yourself.
    """

    def __init__(self, connection: AiohttpConnection, on_event: EventSink):
        if isinstance(connection, web.WebSocketResponse) and not connection.prepared:
            raise ValueError(
                "this aiohttp WebSocketResponse is not prepared: "
                "await ws.prepare(request) before wrapping it in a WsStream"
            )
        self.connection = connection
        aiohttp_request(connection)  # kept for framed.request: aiohttp drops it at close
        # With autoping on, aiohttp answers pings and swallows pongs in receive().
        self._autoping = bool(getattr(connection, "_autoping", True))
        self._close_sent = False
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        super().__init__(on_event)

    # The pump ------------------------------------------------------------------

    async def _receive_one(self) -> None:
        ws = self.connection
        try:
            msg = await ws.receive()
        except TimeoutError:
            # A receive timeout configured on the aiohttp object: treat the
            # connection as dead rather than end a byte stream at a random point.
            self._finish(1006, "no message within aiohttp's receive timeout", clean=False)
            self.abort()
            return
        kind = msg.type
        if kind is WSMsgType.BINARY:
            data = msg.data
            self._deliver(data if isinstance(data, bytes) else bytes(data))
        elif kind is WSMsgType.TEXT:
            text = msg.data
            if not isinstance(text, str):  # decode_text=False gives the raw bytes
                text = bytes(text).decode("utf-8", "replace")
            self._deliver(text)
        elif kind is WSMsgType.PING:  # only with autoping=False
            payload = bytes(msg.data)
            self._on_event(Ping(payload))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.pong(payload)
        elif kind is WSMsgType.PONG:  # only with autoping=False
            payload = bytes(msg.data)
            self._on_event(Pong(payload))
            self._pong_received(payload)
        elif kind is WSMsgType.CLOSE:
            await self._close_received(msg.data, msg.extra)
        elif kind is WSMsgType.CLOSING:
            # Someone closed the aiohttp object directly (or the aiohttp handler
            # returned): aiohttp runs the handshake; wait for its outcome.
            code = await self._local_close_code()
            self._finish(code, "", clean=code != 1006)
        elif kind is WSMsgType.ERROR:
            exc = msg.data
            code = exc.code if isinstance(exc, WebSocketError) else 1006
            self._finish(code, str(exc), clean=False)
        else:  # CLOSED: the TCP connection ended without a close frame
            self._finish(1006, "", clean=False)

    async def _close_received(self, code: int | None, reason: str | None) -> None:
        code = code or 1005  # aiohttp reports a close frame without a code as 0
        reason = reason or ""
        self._on_event(CloseFrame(code, reason))
        ws = self.connection
        if not ws.closed:
            # autoclose=False: aiohttp left the reply to us (RFC 6455 section 5.5.1).
            with contextlib.suppress(Exception):
                await ws.close(code=code if _sendable(code) else 1000)
        self._finish(code, reason, clean=self._close_sent or code in NORMAL_CLOSE_CODES)

    async def _local_close_code(self) -> int:
        ws = self.connection
        # aiohttp signals nothing when its close() ends; it sets close_code within its
        # own close timeout (10 s by default). The deadline is only a safety net.
        deadline = self._loop.time() + 60
        while ws.close_code is None:
            if self._loop.time() > deadline:
                return 1006
            await asyncio.sleep(0.01)
        return ws.close_code

    def _pong_received(self, payload: bytes) -> None:
        if payload not in self._pings:
            return  # unsolicited
        now = time.perf_counter()  # not loop.time(): a millisecond resolution under uvloop
        # As websockets does: a pong acknowledges its ping and every earlier one.
        for key in list(self._pings):
            waiter, sent_at = self._pings.pop(key)
            if not waiter.done():
                waiter.set_result(now - sent_at)
            if key == payload:
                break

    def _on_finish(self) -> None:
        pings, self._pings = self._pings, {}
        for waiter, _ in pings.values():
            if not waiter.done():
                waiter.set_exception(self._closed_error())
                waiter.exception()  # nobody may be waiting any more

    # Backend ---------------------------------------------------------------------

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        if self._final is not None:
            raise self._closed_error()
        try:
            await self.connection.send_bytes(data)  # type: ignore[arg-type]
        except ConnectionError:
            raise self._closed_error() from None

    async def close(self, code: int, reason: str) -> None:
        if not self._close_sent and self._final is None and not self.connection.closed:
            payload = struct.pack("!H", code) + reason.encode()
            if not _sendable(code) or len(payload) > 125:
                raise ValueError(
                    f"cannot send close code {code} with a {len(payload) - 2}-byte reason "
                    "(RFC 6455: codes 1000-1003, 1007-1014, 3000-4999; at most 123 bytes)"
                )
            self._close_sent = True
            with contextlib.suppress(ConnectionError):
                await self.connection.send_frame(payload, WSMsgType.CLOSE)
        await self._done.wait()

    def abort(self) -> None:
        writer = getattr(self.connection, "_writer", None)
        transport = getattr(writer, "transport", None)
        if transport is not None:
            transport.abort()
        self._finish(1006, "", clean=False)

    async def ping(self, data: bytes) -> float:
        if self._autoping:
            raise NotImplementedError(
                "aiohttp answers pings and drops pongs itself (autoping=True), so a "
                "WsStream cannot time a ping: create the WebSocketResponse or "
                "ws_connect() with autoping=False to use ping() and see Ping/Pong events"
            )
        if self._final is not None:
            raise self._closed_error()
        if data in self._pings:
            raise RuntimeError(f"already waiting for a pong with the payload {data!r}")
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._pings[data] = (waiter, time.perf_counter())
        try:
            await self.connection.ping(data)
        except ConnectionError:
            self._pings.pop(data, None)
            raise self._closed_error() from None
        return await waiter

    def extra_info(self, name: str, default: Any) -> Any:
        ws = self.connection
        if name == "connection":
            return ws
        if name == "subprotocol":
            if isinstance(ws, web.WebSocketResponse):
                return ws.ws_protocol
            return ws.protocol
        return ws.get_extra_info(name, default)
