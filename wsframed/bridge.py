"""Bridge TCP and WebSockets: any TCP protocol across a WebSocket, in either direction.

Theory of operation
-------------------
:func:`pump` joins one :class:`~wsframed.WsStream` and one asyncio TCP connection
with two loops, each "read a chunk, write it, wait for the other side's backpressure":

- *up*: ``ws.read()`` -> ``writer.write()`` -> ``await writer.drain()``;
- *down*: ``reader.read()`` -> ``ws.write()`` -> ``await ws.drain()``.

Neither loop reads more until the chunk in hand was accepted, so a slow side pauses
the other all the way to its socket, and the bridge holds a bounded number of bytes
per connection (the chunk, asyncio's and websockets' bounded buffers) whatever the
volumes. A supervisor watches both loops and maps every ending to both sides:

- the target sent EOF: flush, close the WebSocket with 1000; bytes the client sent
  before its close reply still reach the target;
- the WebSocket closed cleanly: ``write_eof()`` on TCP (the last bytes are not cut
  off by a reset), then read and drop what the target still sends until its EOF, for
  at most ``close_timeout``;
- a text message under ``text="reject"``: close 1003 (as websockify), close TCP;
- the WebSocket failed (1006, 1011, ...): close TCP;
- TCP failed (reset, broken pipe): close the WebSocket with 1011, reset TCP;
- no byte either way for ``idle_timeout``, or the server shutting down: close the
  WebSocket with 1001, close TCP.

A WebSocket close is not a TCP half-close: RFC 6455 section 5.5.1 has the receiver
of a close frame answer "as soon as practical", after which neither side may send
data. So the close handshake carries the *end* of a connection, and what the target
answers after a client's close is lost. Between two wsframed bridges the
``wsframed.halfclose`` subprotocol carries a real half-close: binary messages are the
bytes, and a text message means "no more bytes from me" (``write_eof()`` on the
other side); the WebSocket closes with 1000 once both directions have ended.

:func:`serve_bridge` runs a server in either direction: ``ws://`` (or ``wss://``) in,
``tcp://`` out, each WebSocket client getting its own TCP connection, dialled after
the WebSocket was accepted; or ``tcp://`` in, ``ws://``/``wss://`` out, so that two
bridges make a tunnel. :func:`add_arguments` and :func:`run_command` are the
``wsframed bridge`` command; ``python -m wsframed.bridge`` runs it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl as ssl_module
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .cli_args import positive_int, seconds
from .client import byte_stream_defaults
from .errors import ClosedStreamError, ConnectionClosed, ProtocolError
from .events import TextMessage
from .server import ServerStarter
from .stream import EventSubscription, TextPolicy, WsStream

__all__ = [
    "BINARY_SUBPROTOCOL",
    "DEFAULT_MAX_CONNECTIONS",
    "HALF_CLOSE_SUBPROTOCOL",
    "BridgeServer",
    "Endpoint",
    "PumpResult",
    "add_arguments",
    "parse_endpoint",
    "pump",
    "run_command",
    "serve_bridge",
]

BINARY_SUBPROTOCOL = "binary"
"""The subprotocol websockify and noVNC use for raw binary frames."""

HALF_CLOSE_SUBPROTOCOL = "wsframed.halfclose"
"""Binary frames, plus a text message that means "no more bytes from me" (half-close)."""

DEFAULT_MAX_CONNECTIONS = 256
"""Connections a bridge serves at once unless told otherwise; each uses two sockets."""

_CHUNK_SIZE = 64 * 1024
_EOF_MARKER = "EOF"
_GOING_AWAY = 1001
_UNSUPPORTED_DATA = 1003
_INTERNAL_ERROR = 1011
_EXIT_USAGE = 2

logger = logging.getLogger("wsframed.bridge")


# Endpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``tcp://HOST:PORT``, ``ws://HOST:PORT/path`` or ``wss://...`` URL."""

    scheme: Literal["tcp", "ws", "wss"]
    host: str
    port: int
    path: str = ""
    """For ws and wss: the path and query ("" when the URL has none); "" for tcp."""

    @property
    def is_websocket(self) -> bool:
        """True for ws:// and wss://."""
        return self.scheme != "tcp"

    def with_port(self, port: int) -> Endpoint:
        """Return this endpoint with another port (the real one after binding port 0)."""
        return Endpoint(self.scheme, self.host, port, self.path)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_endpoint(url: str) -> Endpoint:
    """Parse a bridge URL; raise ``ValueError`` with a message fit for the command line.

    ``tcp://`` needs a port; ``ws://`` and ``wss://`` default to 80 and 443. A path is
    allowed for WebSocket URLs only.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("tcp", "ws", "wss"):
        raise ValueError(
            f"{url!r}: expected tcp://HOST:PORT, ws://HOST:PORT[/path] or wss://HOST:PORT[/path]"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number in 0..65535") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r}: no host")
    if parts.username is not None or parts.fragment:
        raise ValueError(f"{url!r}: user names, passwords and fragments are not supported")
    if port is None:
        if scheme == "tcp":
            raise ValueError(f"{url!r}: no port (tcp://HOST:PORT)")
        port = 443 if scheme == "wss" else 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if scheme == "tcp":
        if path not in ("", "/"):
            raise ValueError(f"{url!r}: a tcp:// URL has no path")
        return Endpoint("tcp", host, port)
    return Endpoint("wss" if scheme == "wss" else "ws", host, port, path)


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


# One connection pair ----------------------------------------------------------------


@dataclass(frozen=True)
class PumpResult:
    """How one bridged connection ended (what :func:`pump` returns)."""

    ws_to_tcp: int
    """Bytes read from the WebSocket and written to TCP."""
    tcp_to_ws: int
    """Bytes read from TCP and sent over the WebSocket."""
    close_code: int | None
    """The WebSocket close code: the one this side sent if it started the close, else
    the peer's (1006 when the connection broke without one)."""
    reason: str
    """Why it ended: ``"target closed"``, ``"websocket closed"``, ``"idle timeout"``..."""
    duration: float
    """Seconds from the start of :func:`pump` to both sides being closed."""


async def pump(
    ws: WsStream,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    idle_timeout: float | None = None,
    half_close: bool = False,
    close_timeout: float = 10.0,
    chunk_size: int = _CHUNK_SIZE,
) -> PumpResult:
    """Pump bytes both ways between ``ws`` and a TCP connection until both have ended.

    Bytes go in order and are counted; each side's backpressure pauses the other, so
    memory stays bounded. The TCP end of stream closes the WebSocket with 1000 once
    every byte was sent; a clean WebSocket close becomes ``write_eof()`` on TCP (see
    the module documentation for every ending). When nothing moved either way for
    ``idle_timeout`` seconds the WebSocket is closed with 1001. ``close_timeout``
    bounds each closing step.

    ``half_close=True`` speaks :data:`HALF_CLOSE_SUBPROTOCOL` (use it when that
    subprotocol was negotiated, with a stream made with ``text="ignore"``): TCP EOF is
    sent as a text message and a text message received becomes ``write_eof()``.

    Both sides are closed when it returns. Cancelling it closes the WebSocket with
    1001 and the TCP connection, then re-raises ``CancelledError``.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size}")
    if idle_timeout is not None and idle_timeout <= 0:
        raise ValueError(f"idle_timeout must be positive or None, not {idle_timeout}")
    return await _Pump(
        ws, reader, writer, idle_timeout=idle_timeout, half_close=half_close,
        close_timeout=close_timeout, chunk_size=chunk_size,
    ).run()


class _Pump:
    """The two loops of one connection pair and the supervisor that ends them."""

    def __init__(
        self,
        ws: WsStream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        idle_timeout: float | None,
        half_close: bool,
        close_timeout: float,
        chunk_size: int,
    ):
        self.ws = ws
        self.reader = reader
        self.writer = writer
        self.idle_timeout = idle_timeout
        self.half_close = half_close
        self.close_timeout = close_timeout
        self.chunk_size = chunk_size
        self.loop = asyncio.get_running_loop()
        self.ws_to_tcp = 0
        self.tcp_to_ws = 0
        self.reason = ""
        self.code_sent: int | None = None
        self.last_activity = self.loop.time()
        self.peer_eof = False  # half-close: the peer's end-of-bytes marker arrived
        self.stopped: asyncio.Future[str] = self.loop.create_future()

    def stop(self, reason: str) -> None:
        """End the pump: close the WebSocket with 1001 and the TCP connection."""
        if not self.stopped.done():
            self.stopped.set_result(reason)

    # The two loops --------------------------------------------------------------

    async def _ws_to_tcp(self) -> None:
        ws, writer, size = self.ws, self.writer, self.chunk_size
        while data := await ws.read(size):
            self.last_activity = self.loop.time()
            writer.write(data)
            await writer.drain()
            self.ws_to_tcp += len(data)
            self.last_activity = self.loop.time()

    async def _tcp_to_ws(self) -> None:
        ws, reader, size = self.ws, self.reader, self.chunk_size
        while data := await reader.read(size):
            self.last_activity = self.loop.time()
            ws.write(data)
            await ws.drain()
            self.tcp_to_ws += len(data)
            self.last_activity = self.loop.time()
        if self.half_close:
            await _send_text(ws, _EOF_MARKER)

    async def _watch_markers(
        self, events: EventSubscription, up: asyncio.Task[None]
    ) -> None:
        # A text message is reported while ``up`` reads it, after every byte before
        # it was returned by an earlier read and written to TCP; so cancelling that
        # read (which loses nothing) ends the up direction at exactly that point.
        async for event in events:
            if isinstance(event, TextMessage):
                self.peer_eof = True
                up.cancel()
                return

    async def _watch_idle(self, idle_timeout: float) -> None:
        while True:
            delay = self.last_activity + idle_timeout - self.loop.time()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    # Supervision ----------------------------------------------------------------

    async def run(self) -> PumpResult:
        start = self.loop.time()
        tasks: list[asyncio.Task[None]] = []
        # Subscribe before the first read, or a marker could come unobserved.
        events = self.ws.events() if self.half_close else None
        up = self.loop.create_task(self._ws_to_tcp())
        down = self.loop.create_task(self._tcp_to_ws())
        tasks += (up, down)
        if events is not None:
            tasks.append(self.loop.create_task(self._watch_markers(events, up)))
        idle = None
        if self.idle_timeout is not None:
            idle = self.loop.create_task(self._watch_idle(self.idle_timeout))
            tasks.append(idle)
        try:
            await self._supervise(up, down, idle)
        except asyncio.CancelledError:
            self.reason = self.reason or "cancelled"
            await self._shut(_GOING_AWAY, "going away", tasks)
            raise
        except Exception as exc:
            await self._failed(exc, tasks)
            raise
        finally:
            await _cancel(*tasks)
            if events is not None:
                events.close()
        code = self.code_sent if self.code_sent is not None else self.ws.close_code
        return PumpResult(
            self.ws_to_tcp, self.tcp_to_ws, code, self.reason, self.loop.time() - start
        )

    async def _supervise(
        self, up: asyncio.Task[None], down: asyncio.Task[None], idle: asyncio.Task[None] | None
    ) -> None:
        up_done = down_done = target_eof = False
        deadline: float | None = None  # waiting for the peer to end its direction
        while not (up_done and down_done):
            waiting: set[asyncio.Future[Any]] = {self.stopped}
            if not up_done:
                waiting.add(up)
            if not down_done:
                waiting.add(down)
            if idle is not None:
                waiting.add(idle)
            timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:  # the peer did not finish in time after our close
                self.reason = self.reason or "close timed out"
                return await self._shut(None, "", [up, down])
            if self.stopped in done:
                return await self._shut(_GOING_AWAY, self.stopped.result(), [up, down])
            if idle is not None and idle in done:
                return await self._shut(_GOING_AWAY, "idle timeout", [up, down])

            if down in done and not down_done:
                down_done = True
                exc = down.exception()
                if exc is None:  # TCP EOF, and every byte before it was sent
                    target_eof = True
                    if not self.half_close:
                        self.reason = self.reason or "target closed"
                        self._note_close(1000)
                        with contextlib.suppress(ConnectionClosed):
                            await self.ws.send_eof(1000, "target closed")
                        deadline = self.loop.time() + self.close_timeout
                elif isinstance(exc, ConnectionClosed | ClosedStreamError):
                    # The WebSocket is gone; ``up`` still delivers what arrived first
                    # and then tells how it ended.
                    deadline = self.loop.time() + self.close_timeout
                else:
                    return await self._failed(exc, [up])

            if up in done and not up_done:
                up_done = True
                exc = None if up.cancelled() else up.exception()
                if exc is None and self.half_close and self.peer_eof:
                    self._write_eof()  # the peer's half-close
                elif exc is None:  # the WebSocket closed cleanly
                    self.reason = self.reason or "websocket closed"
                    self._write_eof()
                    if not down_done:
                        await _cancel(down)
                        down_done = True
                    if not target_eof:
                        await self._discard_tcp()
                elif isinstance(exc, ProtocolError):
                    self.reason = "text message rejected"
                    return await self._shut(_UNSUPPORTED_DATA, "", [down])
                elif isinstance(exc, ConnectionClosed):
                    self.reason = self.reason or f"websocket failed ({exc.code})"
                    return await self._shut(None, "", [down])
                elif target_eof and isinstance(exc, OSError):
                    # Writing to a target that already closed: nothing more to deliver.
                    self.reason = self.reason or "target closed"
                    return await self._shut(None, "", [down])
                else:
                    return await self._failed(exc, [down])
        self.reason = self.reason or "both sides finished"
        await self._finish()

    async def _finish(self) -> None:
        await self.ws.aclose(1000, timeout=self.close_timeout)
        await self._close_tcp()

    def _note_close(self, code: int) -> None:
        if self.code_sent is None and self.ws.close_code is None:
            self.code_sent = code

    async def _shut(
        self, code: int | None, reason: str, tasks: Sequence[asyncio.Task[None]]
    ) -> None:
        """Stop ``tasks``, close the WebSocket with ``code`` (if still open), close TCP."""
        await _cancel(*tasks)
        if code is not None:
            self._note_close(code)
            self.reason = self.reason or reason
        await self.ws.aclose(code or 1000, reason, timeout=self.close_timeout)
        await self._close_tcp()

    async def _failed(self, exc: BaseException, tasks: Sequence[asyncio.Task[None]]) -> None:
        """A TCP error (or a bug): close the WebSocket with 1011, reset TCP."""
        where = "target failed" if isinstance(exc, OSError) else "bridge error"
        self.reason = f"{where}: {type(exc).__name__}: {exc}"
        self._note_close(_INTERNAL_ERROR)
        await _cancel(*tasks)
        self.writer.transport.abort()
        await self.ws.aclose(_INTERNAL_ERROR, "target connection failed", self.close_timeout)
        await self._close_tcp()

    def _write_eof(self) -> None:
        writer = self.writer
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

    async def _discard_tcp(self) -> None:
        """Read and drop until the target's EOF, so closing does not send a reset."""
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(self.close_timeout):
                while await self.reader.read(self.chunk_size):
                    pass

    async def _close_tcp(self) -> None:
        writer = self.writer
        writer.close()
        try:
            async with asyncio.timeout(self.close_timeout):
                await writer.wait_closed()
        except TimeoutError:
            writer.transport.abort()
        except OSError:
            pass


async def _send_text(ws: WsStream, text: str) -> None:
    """Send one text message on the connection under ``ws`` (after ``ws.drain()``)."""
    connection = ws.get_extra_info("connection")
    # aiohttp's send_str, Starlette's send_text; websockets' send sends a str as text.
    send = getattr(connection, "send_str", None) or getattr(connection, "send_text", None)
    try:
        await (send or connection.send)(text)
    except WsConnectionClosed as exc:
        raise ConnectionClosed(exc.rcvd.code if exc.rcvd is not None else 1006) from exc


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait for them; their outcome was already acted on."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # mark retrieved


# Bridge servers ---------------------------------------------------------------------


def _select_subprotocol(
    offered: Sequence[Subprotocol], half_close: bool
) -> Subprotocol | None:
    # websockify's choice: "binary" when offered, and a client offering nothing (or
    # only protocols we do not speak) still connects, without a subprotocol.
    # (websockets' own ``subprotocols=["binary"]`` would refuse the latter.)
    if half_close and HALF_CLOSE_SUBPROTOCOL in offered:
        return Subprotocol(HALF_CLOSE_SUBPROTOCOL)
    if BINARY_SUBPROTOCOL in offered:
        return Subprotocol(BINARY_SUBPROTOCOL)
    return None


class BridgeServer:
    """A running bridge, as returned by :func:`serve_bridge`.

    ``listen`` and ``to`` are the parsed endpoints; :attr:`url` is the listening URL
    with the real port (useful with port 0).
    """

    def __init__(self, config: serve_bridge):
        self.listen = config.listen
        self.to = config.to
        self._config = config
        self._ws_server: WsServer | None = None
        self._tcp_server: asyncio.Server | None = None
        self._slots: set[object] = set()  # connections being served or handshaking
        self._pumps: set[_Pump] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._closing_waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def _start(self) -> None:
        config = self._config
        listen = self.listen
        if listen.is_websocket:
            self._ws_server = await ws_serve(
                self._handle_websocket, listen.host, listen.port,
                ssl=config.ssl,
                select_subprotocol=lambda _, offered: _select_subprotocol(
                    offered, config.half_close
                ),
                process_request=self._process_request,
                **byte_stream_defaults(config.ws_options),
            )
        else:
            self._tcp_server = await asyncio.start_server(
                self._handle_tcp, listen.host, listen.port
            )

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        server = self._ws_server or self._tcp_server
        return tuple(server.sockets) if server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket."""
        port: int = self.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """The URL this bridge listens on, with the real port."""
        return str(self.listen.with_port(self.port))

    @property
    def active_connections(self) -> int:
        """Connections being served now (each counts against ``max_connections``)."""
        return len(self._slots)

    # WebSocket in, TCP out --------------------------------------------------------

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = self.listen.path.partition("?")[0]  # a query string is not matched
        if path not in ("", "/") and request.path.partition("?")[0] != path:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if len(self._slots) >= self._config.max_connections:
            logger.warning(
                "refused peer=%s: max-connections (%d) reached",
                _format_address(connection.remote_address), self._config.max_connections,
            )
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections, try again later.\n"
            )
        self._take_slot(connection, connection.wait_closed())
        return None

    def _take_slot(self, key: object, released: Any) -> None:
        self._slots.add(key)

        async def release() -> None:
            try:
                await released
            finally:
                self._slots.discard(key)

        self._spawn(release())

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle_websocket(self, connection: ServerConnection) -> None:
        config = self._config
        start = time.monotonic()
        peer = _format_address(connection.remote_address)
        half = connection.subprotocol == HALF_CLOSE_SUBPROTOCOL
        stream = WsStream(
            connection, text="ignore" if half else config.text,
            close_timeout=config.close_timeout,
        )
        try:
            async with asyncio.timeout(config.open_timeout):
                reader, writer = await asyncio.open_connection(self.to.host, self.to.port)
        except (OSError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            await stream.aclose(_INTERNAL_ERROR, "target unreachable")
            _log_connection(peer, self.to, 0, 0, time.monotonic() - start, _INTERNAL_ERROR,
                            f"target unreachable: {why}")
            return
        result = await self._run_pump(stream, reader, writer, half)
        _log_connection(peer, self.to, result.ws_to_tcp, result.tcp_to_ws,
                        time.monotonic() - start, result.close_code, result.reason)

    # TCP in, WebSocket out --------------------------------------------------------

    async def _handle_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        config = self._config
        start = time.monotonic()
        peer = _format_address(writer.get_extra_info("peername"))
        if self._closing:
            writer.close()
            return
        if len(self._slots) >= config.max_connections:
            logger.warning("refused peer=%s: max-connections (%d) reached",
                           peer, config.max_connections)
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._slots.add(writer)
        try:
            offered = [HALF_CLOSE_SUBPROTOCOL] if config.half_close else []
            offered.append(BINARY_SUBPROTOCOL)
            try:
                connection = await ws_connect(
                    str(self.to),
                    ssl=config.target_ssl,
                    subprotocols=[Subprotocol(name) for name in offered],
                    open_timeout=config.open_timeout,
                    **byte_stream_defaults(config.ws_options),
                )
            except Exception as exc:  # unreachable, refused, TLS or HTTP failure
                writer.transport.abort()
                _log_connection(peer, self.to, 0, 0, time.monotonic() - start, None,
                                f"target unreachable: {type(exc).__name__}: {exc}")
                return
            half = connection.subprotocol == HALF_CLOSE_SUBPROTOCOL
            stream = WsStream(
                connection, text="ignore" if half else config.text,
                close_timeout=config.close_timeout,
            )
            result = await self._run_pump(stream, reader, writer, half)
            _log_connection(peer, self.to, result.tcp_to_ws, result.ws_to_tcp,
                            time.monotonic() - start, result.close_code, result.reason)
        finally:
            self._slots.discard(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _run_pump(
        self,
        stream: WsStream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        half_close: bool,
    ) -> PumpResult:
        config = self._config
        runner = _Pump(
            stream, reader, writer, idle_timeout=config.idle_timeout, half_close=half_close,
            close_timeout=config.close_timeout, chunk_size=_CHUNK_SIZE,
        )
        self._pumps.add(runner)
        if self._closing:
            runner.stop("bridge shutting down")
        try:
            return await runner.run()
        finally:
            self._pumps.discard(runner)

    # Lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening; close every bridged connection (WebSocket 1001, TCP closed)."""
        if self._closing:
            return
        self._closing = True
        self._closing_waiter.set_result(None)
        for runner in tuple(self._pumps):
            runner.stop("bridge shutting down")
        if self._ws_server is not None:
            self._ws_server.close()
        if self._tcp_server is not None:
            self._tcp_server.close()

    async def wait_closed(self) -> None:
        """Wait until the server and every connection it served are closed."""
        if self._ws_server is not None:
            await self._ws_server.wait_closed()
        while self._tasks:
            await asyncio.wait(tuple(self._tasks))
        if self._tcp_server is not None:
            await self._tcp_server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or the task is cancelled."""
        try:
            await asyncio.shield(self._closing_waiter)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise
        await self.wait_closed()

    async def __aenter__(self) -> BridgeServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()


def _log_connection(
    peer: str, target: Endpoint, to_target: int, to_client: int, duration: float,
    code: int | None, reason: str,
) -> None:
    logger.info(
        "peer=%s target=%s to_target=%d to_client=%d duration=%.3fs close=%s reason=%r",
        peer, target, to_target, to_client, duration, code if code is not None else "-", reason,
    )


# lower case: a function-like class, as wsframed.serve
class serve_bridge(ServerStarter[BridgeServer]):
    """Run a bridge server from ``listen`` to ``to``; ``port`` 0 picks a free port.

    Either ``listen="ws://HOST:PORT[/path]"`` (or ``wss://``, with ``ssl``) and
    ``to="tcp://HOST:PORT"``: each WebSocket client is accepted, then gets its own
    TCP connection to the target (closed 1011 when that fails). Or
    ``listen="tcp://HOST:PORT"`` and ``to="ws://HOST:PORT/path"`` (or ``wss://``):
    each TCP client gets its own WebSocket, so two bridges make a tunnel.

    Use as ``async with serve_bridge(...) as bridge`` or ``bridge = await
    serve_bridge(...)``; either gives a :class:`BridgeServer`.

    Args:
        text: ``"reject"`` closes a connection sending a text message with 1003
            (websockify); ``"bytes"`` forwards its UTF-8 bytes.
        max_connections: connections served at once; a WebSocket client over the
            limit gets HTTP 503, a TCP client is disconnected at once.
        idle_timeout: close a connection (WebSocket 1001) when no byte moved either
            way for this many seconds; None never.
        ssl: the server ``SSLContext`` for a ``wss://`` listen URL.
        target_ssl: the client ``SSLContext`` for a ``wss://`` target; by default the
            system's trusted CAs, with host name checking.
        half_close: offer and accept :data:`HALF_CLOSE_SUBPROTOCOL`.
        open_timeout: the most seconds to reach the target (TCP connect, or the
            WebSocket and TLS handshakes).
        close_timeout: the most seconds each closing step may take.
        ws_options: passed to websockets' ``serve()`` or ``connect()`` (``max_size``,
            ``max_queue``, ``ping_interval``, ``origins``...); compression is off.

    Raises ``ValueError`` for URLs that do not parse or do not pair up.
    """

    def __init__(
        self,
        listen: str,
        to: str,
        *,
        text: TextPolicy = "reject",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float | None = None,
        ssl: ssl_module.SSLContext | None = None,
        target_ssl: ssl_module.SSLContext | None = None,
        half_close: bool = True,
        open_timeout: float = 10.0,
        close_timeout: float = 10.0,
        **ws_options: Any,
    ):
        self.listen = parse_endpoint(listen)
        self.to = parse_endpoint(to)
        if self.listen.is_websocket == self.to.is_websocket:
            raise ValueError(
                "a bridge joins a WebSocket and TCP: --listen ws://... (or wss://) with "
                "--to tcp://HOST:PORT, or --listen tcp://... with --to ws://... (or wss://)"
            )
        if self.listen.scheme == "wss" and ssl is None:
            raise ValueError(f"listening on {self.listen} needs a certificate (ssl=, --cert)")
        if self.listen.scheme != "wss" and ssl is not None:
            raise ValueError(f"a certificate is for wss:// listen URLs, not {self.listen}")
        if self.to.scheme == "wss" and target_ssl is None:
            target_ssl = ssl_module.create_default_context()
        if self.to.scheme != "wss" and target_ssl is not None:
            raise ValueError(f"TLS options for the target need a wss:// target, not {self.to}")
        if text not in ("reject", "bytes", "ignore"):
            raise ValueError(f"text must be 'reject' or 'bytes', not {text!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive or None, not {idle_timeout}")
        self.text: TextPolicy = text
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.ssl = ssl
        self.target_ssl = target_ssl
        self.half_close = half_close
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.ws_options = ws_options
        self._server: BridgeServer | None = None

    async def _start(self) -> BridgeServer:
        if self._server is None:
            server = BridgeServer(self)
            await server._start()
            self._server = server
        return self._server



# The ``wsframed bridge`` command ------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``wsframed bridge`` options to ``parser``."""
    parser.description = (
        "Pump bytes between WebSocket and TCP connections, websockify-compatible. "
        "--listen ws://HOST:PORT --to tcp://HOST:PORT gives each WebSocket client its "
        "own TCP connection to the target; --listen tcp://HOST:PORT --to "
        "ws://HOST:PORT/path is the reverse, so two bridges make a tunnel. Prints "
        "'listening on URL -> TARGET' on stderr, then one line per connection; "
        "SIGINT or SIGTERM stops it (exit status 0)."
    )
    parser.add_argument("--listen", required=True, metavar="URL",
                        help="ws://HOST:PORT[/path], wss://HOST:PORT[/path] or "
                        "tcp://HOST:PORT (port 0: any free port)")
    parser.add_argument("--to", required=True, metavar="URL",
                        help="tcp://HOST:PORT (for a ws/wss listener) or "
                        "ws(s)://HOST:PORT/path (for a tcp listener)")
    parser.add_argument("--text", choices=("reject", "bytes"), default="reject",
                        help="text messages: close with 1003 (reject, the default, as "
                        "websockify) or forward their UTF-8 bytes (bytes)")
    parser.add_argument("--max-connections", type=positive_int, default=DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="connections served at once; more are refused "
                        "(WebSocket: HTTP 503; TCP: closed at once) "
                        f"(default: {DEFAULT_MAX_CONNECTIONS})")
    parser.add_argument("--idle-timeout", type=seconds, default=0.0, metavar="SECONDS",
                        help="close a connection after this long without a byte either "
                        "way (WebSocket close 1001); 0 never (default)")
    parser.add_argument("--cert", metavar="FILE",
                        help="certificate chain (PEM) to listen on wss://")
    parser.add_argument("--key", metavar="FILE",
                        help="private key (PEM) of --cert, if not in the same file")
    parser.add_argument("--cafile", metavar="FILE",
                        help="trust the CA certificates in FILE for a wss:// target")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify a wss:// target's certificate")
    parser.add_argument("--no-half-close", dest="half_close", action="store_false",
                        help=f"do not offer or accept the {HALF_CLOSE_SUBPROTOCOL} "
                        "subprotocol (TCP half-close between two wsframed bridges)")
    parser.add_argument("--open-timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="the most time to reach the target (default: 10)")
    parser.add_argument("--close-timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="the most time each closing step may take (default: 10)")
    parser.add_argument("--quiet", action="store_true",
                        help="no line per connection (refusals and errors are still shown)")


def _ssl_contexts(
    args: argparse.Namespace, listen: Endpoint, to: Endpoint
) -> tuple[ssl_module.SSLContext | None, ssl_module.SSLContext | None]:
    """Build the server and target TLS contexts from the options (ValueError if wrong)."""
    server_ssl = None
    if listen.scheme == "wss" and args.cert is None:
        raise ValueError(f"listening on {listen} needs --cert (and --key)")
    if args.cert is not None or args.key is not None:
        if listen.scheme != "wss":
            raise ValueError(f"--cert/--key are for a wss:// --listen URL, not {listen}")
        if args.cert is None:
            raise ValueError("--key needs --cert")
        server_ssl = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
        try:
            server_ssl.load_cert_chain(args.cert, args.key)
        except (OSError, ssl_module.SSLError) as exc:
            raise ValueError(f"cannot load --cert {args.cert}: {exc}") from None
    target_ssl = None
    if (args.cafile is not None or args.insecure) and to.scheme != "wss":
        raise ValueError(f"--cafile/--insecure are for a wss:// --to URL, not {to}")
    if to.scheme == "wss":
        try:
            target_ssl = ssl_module.create_default_context(cafile=args.cafile)
        except (OSError, ssl_module.SSLError) as exc:
            raise ValueError(f"cannot load --cafile {args.cafile}: {exc}") from None
        if args.insecure:
            target_ssl.check_hostname = False
            target_ssl.verify_mode = ssl_module.CERT_NONE
    return server_ssl, target_ssl


def _error(message: str) -> None:
    print(f"wsframed bridge: error: {message}", file=sys.stderr, flush=True)


async def run_command(args: argparse.Namespace) -> int:
    """Run ``wsframed bridge`` until SIGINT or SIGTERM; return the exit status.

    0 after a signal; 1 when it cannot listen; 2 for bad options (one line on
    stderr). Cancelling it closes the bridge and re-raises ``CancelledError``.
    """
    try:
        listen, to = parse_endpoint(args.listen), parse_endpoint(args.to)
        server_ssl, target_ssl = _ssl_contexts(args, listen, to)
        bridge = serve_bridge(
            args.listen, args.to, text=args.text, max_connections=args.max_connections,
            idle_timeout=args.idle_timeout or None, ssl=server_ssl, target_ssl=target_ssl,
            half_close=args.half_close, open_timeout=args.open_timeout,
            close_timeout=args.close_timeout,
        )
    except ValueError as exc:
        _error(str(exc))
        return _EXIT_USAGE
    if args.quiet:
        logger.setLevel(logging.WARNING)
    elif logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        server = await bridge
    except OSError as exc:
        _error(f"cannot listen on {listen}: {exc.strerror or exc}")
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if signum is None:
            continue
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
            continue
        installed.append(signum)
    try:
        print(f"listening on {server.url} -> {to}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        server.close()
        await server.wait_closed()
    return 0


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsframed.bridge")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        return asyncio.run(run_command(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(_main())
