"""Bridge servers: [`serve_bridge`][wsframed.bridge.serve_bridge] listens on one endpoint and dials
the other.

``ws://`` (or ``wss://``) in and ``tcp://`` out, or ``tcp://`` in and ``ws://``/``wss://``
out; each accepted connection gets its own connection to the target and a
[`pump`][wsframed.bridge.pump] between the two. [`parse_endpoint`][wsframed.bridge.parse_endpoint]
reads the URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ..client import byte_stream_defaults
from ..loops import Shell, asyncio_shell
from ..server import ServerStarter
from ..stream import TextPolicy, WsStream
from .admission import Admission, counted_connection
from .admission import format_address as _format_address
from .pumping import (
    _CHUNK_SIZE,
    _INTERNAL_ERROR,
    HALF_CLOSE_SUBPROTOCOL,
    TARGET_UNREACHABLE,
    PumpResult,
    _Pump,
    describe_failure,
)
from .tcp import AsyncioTcp, TcpSide

__all__ = [
    "BINARY_SUBPROTOCOL",
    "DEFAULT_MAX_CONNECTIONS",
    "BridgeServer",
    "Endpoint",
    "parse_endpoint",
    "serve_bridge",
]

BINARY_SUBPROTOCOL = "binary"
"""The subprotocol websockify and noVNC use for raw binary frames."""

DEFAULT_MAX_CONNECTIONS = 256
"""Connections a bridge serves at once unless told otherwise; each uses two sockets."""

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


def parse_endpoint(url: str, *, listening: bool = False) -> Endpoint:
    """Parse a bridge URL; raise ``ValueError`` with a message fit for the command line.

    ``tcp://`` needs a port; ``ws://`` and ``wss://`` default to 80 and 443, except for
    a URL to listen on (``listening=True``), which needs a port whatever its scheme
    (0 for any free port). A path is allowed for WebSocket URLs only.
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
        if listening:
            raise ValueError(
                f"{url!r}: no port to listen on ({scheme}://HOST:PORT, 0 for any free port)"
            )
        if scheme == "tcp":
            raise ValueError(f"{url!r}: no port (tcp://HOST:PORT)")
        port = 443 if scheme == "wss" else 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if scheme == "tcp":
        if path not in ("", "/"):
            raise ValueError(f"{url!r}: a tcp:// URL has no path")
        return Endpoint("tcp", host, port)
    return Endpoint("wss" if scheme == "wss" else "ws", host, port, path)


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
    """A running bridge, as returned by [`serve_bridge`][wsframed.bridge.serve_bridge]
    (asyncio) or started by [`wsframed.trio.serve_bridge`][wsframed.trio.serve_bridge].

    ``listen`` and ``to`` are the parsed endpoints; [`url`][wsframed.bridge.BridgeServer.url] is
    the listening URL with the real port (useful with port 0).

    What a bridged connection does is written once, here and in the pump; how it
    listens and dials is the loop's: asyncio's streams and websockets.asyncio in this
    class, trio's and websockets.trio in ``wsframed.bridge.trio``.
    """

    def __init__(self, config: serve_bridge, shell: Shell | None = None):
        self.listen = config.listen
        self.to = config.to
        self._config = config
        self._shell = shell if shell is not None else asyncio_shell()
        self._ws_server: WsServer | None = None
        self._tcp_server: asyncio.Server | None = None
        self._port: int | None = None  # the bound port, kept after close()
        # One slot per connection, from its TCP accept to its close (handshakes too).
        self._admission = Admission(config.max_connections, logger, self._shell.call_later)
        self._pumps: set[_Pump] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._closing_waiter: Any = self._shell.create_future()

    async def _start(self) -> None:
        config = self._config
        listen = self.listen
        if listen.is_websocket:
            options = byte_stream_defaults(config.ws_options)
            tls_timeout = tls_shutdown = None
            if config.ssl is not None:  # the defaults websockets would give asyncio
                tls_timeout = float(options.pop(
                    "ssl_handshake_timeout", options.get("open_timeout", 10.0)) or 60.0)
                tls_shutdown = options.pop("ssl_shutdown_timeout",
                                           options.get("close_timeout", 10.0))
            own_tls = config.ssl is not None and isinstance(
                asyncio.get_running_loop(), asyncio.BaseEventLoop
            )  # asyncio's own loop: the connection runs TLS itself once admitted
            if own_tls or config.ssl is None:
                counted = counted_connection(
                    self._admission, config.ssl, tls_timeout, tls_shutdown
                )
            else:  # another loop (uvloop) runs the TLS handshake before the connection
                options["ssl_handshake_timeout"] = tls_timeout
                options["ssl_shutdown_timeout"] = tls_shutdown
                counted = counted_connection(self._admission, loop_tls_timeout=tls_timeout)
            self._ws_server = await ws_serve(
                self._handle_websocket, listen.host, listen.port,
                ssl=None if own_tls else config.ssl,
                select_subprotocol=self._select_subprotocol,
                process_request=self._process_request,
                create_connection=counted,
                **options,
            )
        else:
            self._tcp_server = await asyncio.start_server(
                self._handle_tcp, listen.host, listen.port
            )
        self._bound()

    def _bound(self) -> None:
        """Note the port bound (what ``port`` answers, also after ``close()``)."""
        sockets = self.sockets
        if sockets:
            self._port = sockets[0].getsockname()[1]

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets (none once closed)."""
        server = self._ws_server or self._tcp_server
        return tuple(server.sockets) if server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket: the one bound, also after
        [`close`][wsframed.bridge.BridgeServer.close] (which closes the sockets)."""
        if self._port is None:  # pragma: no cover - set before the server is handed out
            raise RuntimeError("this bridge has not started listening yet")
        return self._port

    @property
    def url(self) -> str:
        """The URL this bridge listens on, with the real port (also after ``close()``)."""
        return str(self.listen.with_port(self.port))

    @property
    def active_connections(self) -> int:
        """Connections held now, each from its TCP accept to its close, handshakes
        included (each counts against ``max_connections``)."""
        return len(self._admission.held)

    # The loop's part: how the target is dialled ----------------------------------

    async def _open_tcp(self) -> TcpSide:
        reader, writer = await asyncio.open_connection(self.to.host, self.to.port)
        return AsyncioTcp(reader, writer)

    def _connect_ws(self, **options: Any) -> AbstractAsyncContextManager[Any]:
        return ws_connect(str(self.to), **options)

    def _peer_of(self, connection: Any) -> Any:
        return connection.remote_address

    # WebSocket in, TCP out --------------------------------------------------------

    def _select_subprotocol(
        self, connection: Any, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return _select_subprotocol(offered, self._config.half_close)

    def _process_request(self, connection: Any, request: Request) -> Response | None:
        # Only admitted connections get here: the slot was taken at the TCP accept.
        path = self.listen.path.partition("?")[0]  # a query string is not matched
        if path not in ("", "/") and request.path.partition("?")[0] != path:
            response: Response = connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
            return response
        return None

    async def _handle_websocket(self, connection: Any) -> None:
        config = self._config
        shell = self._shell
        start = time.monotonic()
        peer = _format_address(self._peer_of(connection))
        half = connection.subprotocol == HALF_CLOSE_SUBPROTOCOL
        stream = WsStream(
            connection, text="ignore" if half else config.text,
            close_timeout=config.close_timeout,
        )
        try:
            async with shell.timeout_at(shell.time() + config.open_timeout):
                tcp = await self._open_tcp()
        except (OSError, TimeoutError) as exc:
            await stream.aclose(_INTERNAL_ERROR, TARGET_UNREACHABLE)
            _log_connection(peer, self.to, 0, 0, time.monotonic() - start, _INTERNAL_ERROR,
                            f"{TARGET_UNREACHABLE}: {describe_failure(exc)}")
            return
        result = await self._run_pump(stream, tcp, half)
        _log_connection(peer, self.to, result.ws_to_tcp, result.tcp_to_ws,
                        time.monotonic() - start, result.close_code, result.reason)

    # TCP in, WebSocket out --------------------------------------------------------

    async def _handle_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._closing:
            writer.close()
            return
        # Called at the TCP accept, before any await: the slot is held from there.
        if not self._admission.admit(writer):
            self._admission.refused(_format_address(writer.get_extra_info("peername")))
            writer.close()  # nothing to tell a TCP client: the end of stream, now
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve_tcp_client(AsyncioTcp(reader, writer))
        finally:
            self._admission.release(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _serve_tcp_client(self, tcp: TcpSide) -> None:
        """Dial the WebSocket target for an admitted TCP client and pump until the end."""
        config = self._config
        start = time.monotonic()
        peer = _format_address(tcp.peer())
        offered = [HALF_CLOSE_SUBPROTOCOL] if config.half_close else []
        offered.append(BINARY_SUBPROTOCOL)
        async with contextlib.AsyncExitStack() as stack:
            try:
                connection = await stack.enter_async_context(self._connect_ws(
                    ssl=config.target_ssl,
                    subprotocols=[Subprotocol(name) for name in offered],
                    open_timeout=config.open_timeout,
                    **byte_stream_defaults(config.ws_options),
                ))
            except Exception as exc:  # unreachable, refused, TLS or HTTP failure
                tcp.abort()
                _log_connection(peer, self.to, 0, 0, time.monotonic() - start, None,
                                f"{TARGET_UNREACHABLE}: {describe_failure(exc)}")
                return
            half = connection.subprotocol == HALF_CLOSE_SUBPROTOCOL
            stream = WsStream(
                connection, text="ignore" if half else config.text,
                close_timeout=config.close_timeout,
            )
            result = await self._run_pump(stream, tcp, half)
            _log_connection(peer, self.to, result.tcp_to_ws, result.ws_to_tcp,
                            time.monotonic() - start, result.close_code, result.reason)

    async def _run_pump(self, stream: WsStream, tcp: TcpSide, half_close: bool) -> PumpResult:
        config = self._config
        runner = _Pump(
            stream, tcp, idle_timeout=config.idle_timeout, half_close=half_close,
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
        """Stop listening; close every bridged connection (WebSocket 1001, TCP closed).

        [`port`][wsframed.bridge.BridgeServer.port] and ``url`` still tell the port
        that was bound."""
        if self._closing:
            return
        self._closing = True
        self._closing_waiter.set_result(None)
        self._admission.close()
        for runner in tuple(self._pumps):
            runner.stop("bridge shutting down")
        self._stop_listening()

    def _stop_listening(self) -> None:
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
        """Serve until closed or cancelled.

        Returns when [`close`][wsframed.bridge.BridgeServer.close] is called; cancelling the
        task stops it too.
        """
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
    serve_bridge(...)``; either gives a [`BridgeServer`][wsframed.bridge.BridgeServer].

    Args:
        text: ``"reject"`` closes a connection sending a text message with 1003
            (websockify); ``"bytes"`` forwards its UTF-8 bytes.
        max_connections: connections held at once, each counted from its TCP accept
            (so handshakes in progress count) to its close; a WebSocket client over
            the limit gets HTTP 503 at once, without a WebSocket handshake, a TCP
            client is disconnected at once.
        idle_timeout: close a connection (WebSocket 1001) when no byte moved either
            way for this many seconds; None never.
        ssl: the server ``SSLContext`` for a ``wss://`` listen URL.
        target_ssl: the client ``SSLContext`` for a ``wss://`` target; by default the
            system's trusted CAs, with host name checking.
        half_close: offer and accept ``HALF_CLOSE_SUBPROTOCOL``.
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
        self.listen = parse_endpoint(listen, listening=True)
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
