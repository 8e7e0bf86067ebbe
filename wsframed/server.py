"""serve(): a WebSocket server whose handler receives a [`Framed`][wsframed.Framed].

When the handler returns, the connection closes with 1000. When it lets an exception
escape, the connection closes and one record is logged on ``wsframed.server``, after
the close frame went out, naming the close code actually sent (a text message under
``text="reject"`` has already closed with 1003, for example)::

    escaped from the handler             close   logged
    FrameTooLarge of a received frame    1009    WARNING, no traceback (the peer's)
    DecodeError (IncompleteFrame)        1007    WARNING, no traceback (the peer's)
    ProtocolError                        1002    WARNING, no traceback (the peer's)
    ConnectionClosed, EndOfStream        -       INFO, no traceback (the peer left)
      of another connection (this one    1011    ERROR, traceback (a local bug)
      still open)
    FrameTooLarge the handler sent       1011    ERROR, traceback (a local bug)
    any other Exception                  1011    ERROR, traceback (a local bug)

Errors that are the peer's never log a traceback, so a hostile client costs one log
line per connection. The server keeps serving. While closing, incoming messages are
read and dropped, so a slow or hostile client cannot hold the close handshake up until
``close_timeout``.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar, cast, overload

if TYPE_CHECKING:  # websockets is imported when a server starts, not with wsframed
    from websockets.asyncio.server import Server as WsServer
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

from .checkpoint import checkpoint
from .client import BackendName, byte_stream_defaults, check_backend
from .codecs.base import Codec
from .errors import (
    ConnectionClosed,
    DecodeError,
    EndOfStream,
    FrameTooLarge,
    ProtocolError,
)
from .framed import Framed, check_codec
from .negotiation import Negotiator, server_negotiator
from .stream import TextPolicy, WsStream

if TYPE_CHECKING:
    from .backends.picows import PicowsServer

__all__ = ["FramedServer", "serve"]

T = TypeVar("T")

logger = logging.getLogger("wsframed.server")

Handler = Callable[[Framed[T]], Awaitable[None]]


class FramedServer:
    """A running server (wraps websockets' ``Server``, which is ``ws_server``)."""

    def __init__(self, ws_server: WsServer | PicowsServer):
        self.ws_server = ws_server

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets, as ``asyncio.Server.sockets``."""
        return self.ws_server.sockets

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        port: int = self.sockets[0].getsockname()[1]
        return port

    async def serve_forever(self) -> None:
        """Serve until cancelled or closed; ``RuntimeError`` when already closed."""
        try:
            if self.ws_server.close_task is not None:
                raise RuntimeError("serve_forever() on a server that was closed")
            await self.ws_server.serve_forever()
        except Exception:
            await checkpoint()  # raised without waiting: yield all the same
            raise

    def close(self, close_connections: bool = True) -> None:
        """Stop listening and, by default, close open connections with 1001."""
        self.ws_server.close(close_connections)

    async def wait_closed(self) -> None:
        """Wait until the server and its connections are closed."""
        try:
            await self.ws_server.wait_closed()
        except Exception:
            await checkpoint()
            raise

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()


class _Closable(Protocol):
    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class ServerStarter(Generic[S]):
    """``server = await starter`` or ``async with starter as server`` (closed on exit).

    Shared by [`serve`][wsframed.serve] and
    [`wsframed.bridge.serve_bridge`][wsframed.bridge.serve_bridge]: subclasses implement
    ``_start()``, which starts the server once and returns it.
    """

    _server: S | None = None

    async def _start(self) -> S:
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, S]:
        return self._start().__await__()

    async def __aenter__(self) -> S:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# lower case: a function-like class, as websockets' serve
class serve(ServerStarter[FramedServer], Generic[T]):
    """Serve WebSocket connections on ``host:port``, handing each a ``Framed``.

    Use as ``async with serve(handler, host, port, codec) as server`` or
    ``server = await serve(...)``; ``port=0`` picks a free port (``server.port``).
    The codec is an instance, given positionally as in
    [`connect`][wsframed.connect] or as ``codec=``; a codec class or any other
    object is a ``TypeError`` here, at the call, not at each connection.
    ``text``, ``write_chunk_size``, ``limit``, ``event_queue_size`` and
    ``close_timeout`` configure each [`WsStream`][wsframed.WsStream]; ``close_timeout`` is
    also websockets' own (the bound on a close handshake websockets starts, for
    example after a keepalive timeout). Every other keyword goes to websockets'
    ``serve()`` (``origins``, ``subprotocols``, ``ssl``, ``max_size``, ``max_queue``,
    ``ping_interval``, ``process_request``, ...), with ``compression=None`` unless given.

    When the handler returns, the connection closes with 1000. When it lets an
    exception escape, the close code says who was wrong: 1009, 1007 or 1002 for the
    peer's data (a received frame over the limit, bytes the codec cannot decode, a
    text message), 1011 for the handler's own bug (including a frame it sent over its
    own ``max_frame_size``, and a ``ConnectionClosed`` or ``EndOfStream`` of another
    connection it used, while its own is open). One record per connection is logged on
    ``wsframed.server``, naming the close code actually sent; only the handler's own
    bugs carry a traceback, so a hostile client costs one line.

    Several endpoints on one port: give a mapping of paths to handlers instead of one
    handler, ``serve({"/chat": chat, "/feed": feed}, host, port, codec)``. The request's
    path (as sent, without its query string; see
    [`Request.path`][wsframed.Request.path]) picks the handler by exact match; any
    other path is refused in the handshake with HTTP 404, after a ``process_request``
    you pass has had its say. Every route shares the codec and the options.

    Several codecs, chosen by the client: give a list, ``serve(handler, host, port,
    [MsgpackCodec(), JsonLinesCodec()])``, or one codec with ``negotiate=True``. The
    codec is then negotiated through the WebSocket subprotocol (see
    [`wsframed.negotiation`][wsframed.negotiation]): the first name the client offers
    that the server has is selected and ``framed.codec`` is that codec; a client that
    offers no ``wsframed.*`` name gets the first codec; one offering only codecs the
    server lacks is refused with HTTP 400 (and one WARNING logged), and a wsframed
    client raises [`CodecMismatch`][wsframed.negotiation.CodecMismatch].

    ``backend="picows"`` serves with picows (``wsframed[picows]``), several times
    faster per message; it takes the options picows has a counterpart for and raises
    for the others (``process_request``, ``origins``, ...); see the backends guide.
    """

    @overload
    def __init__(
        self,
        handler: Handler[T] | Mapping[str, Handler[T]],
        host: str | None,
        port: int | None,
        codec: Codec[T] | Sequence[Codec[Any]],
        *,
        negotiate: bool = False,
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
        backend: BackendName = "websockets",
        **options: Any,
    ): ...

    @overload
    def __init__(
        self,
        handler: Handler[T] | Mapping[str, Handler[T]],
        host: str | None = None,
        port: int | None = None,
        *,
        codec: Codec[T] | Sequence[Codec[Any]],
        negotiate: bool = False,
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
        backend: BackendName = "websockets",
        **options: Any,
    ): ...

    def __init__(
        self,
        handler: Handler[T] | Mapping[str, Handler[T]],
        host: str | None = None,
        port: int | None = None,
        codec: Codec[T] | Sequence[Codec[Any]] | None = None,
        *,
        negotiate: bool = False,
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
        backend: BackendName = "websockets",
        **options: Any,
    ):
        check_backend(backend, "serve()")
        self._routes, codecs, self._negotiator = _configured(
            handler, codec, negotiate, options, backend
        )
        self.handler = handler
        """The handler, or the mapping of paths to handlers, as given."""
        self.codecs: tuple[Codec[Any], ...] = codecs
        """The codecs, the first one the default (for a client that does not negotiate)."""
        self.codec: Codec[T] = codecs[0]
        self._close_timeout = close_timeout
        self._stream_options: dict[str, Any] = {
            "text": text,
            "write_chunk_size": write_chunk_size,
            "limit": limit,
            "event_queue_size": event_queue_size,
            "close_timeout": close_timeout,
        }
        starter: Any
        if backend == "picows":
            from .backends.picows import start_server as starter
        else:
            from websockets.asyncio.server import serve as starter
        self._ws_serve = starter(
            self._handle,
            host,
            port,
            close_timeout=close_timeout,
            **byte_stream_defaults(options),
        )
        self._server: FramedServer | None = None

    async def _handle(self, connection: Any) -> None:
        stream = WsStream(connection, **self._stream_options)
        negotiator = self._negotiator
        codec = self.codec if negotiator is None else negotiator.codec_for(connection.subprotocol)
        framed = Framed(stream, codec)
        handler = _handler_of(self.handler, self._routes, connection)
        await _run_handler(handler, framed, stream, connection)

    async def _start(self) -> FramedServer:
        if self._server is None:
            # A failure to listen (a port in use) is raised after asyncio has yielded.
            self._server = FramedServer(await self._ws_serve)
        return self._server


def _configured(
    handler: object,
    codec: object,
    negotiate: bool,
    options: dict[str, Any],
    backend: str = "websockets",
) -> tuple[dict[str, Handler[Any]] | None, tuple[Codec[Any], ...], Negotiator | None]:
    """serve()'s arguments checked, on asyncio and trio alike: the routes (or None for
    one handler), the codecs and the negotiator (or None). The handshake's checks
    (404 for an unknown path, 400 for a codec mismatch) are chained into ``options``'
    ``process_request`` after the caller's own; the caller's mistakes raise here."""
    codecs = _checked_codecs(codec)
    negotiator: Negotiator | None = None
    if negotiate or isinstance(codec, (list, tuple)):
        if backend != "websockets":
            raise TypeError(
                f"serve() negotiates the codec through websockets' subprotocol "
                f"selection: backend={backend!r} cannot (give one codec)"
            )
        negotiator = server_negotiator(codecs, options)
    checks: list[_Check] = []
    routes: dict[str, Handler[Any]] | None = None
    if isinstance(handler, Mapping):
        routes = _checked_routes(handler)
        if backend == "picows":
            options["paths"] = set(routes)  # others: HTTP 404
        else:
            checks.append(_refusing_unknown_paths(routes))
    elif not callable(handler):
        raise TypeError(
            "serve() needs a handler first: an async function taking a Framed, "
            f"or a mapping of paths to such functions, not a {type(handler).__qualname__}"
        )
    if negotiator is not None:
        checks.append(negotiator.refusal)
    if checks:
        options["process_request"] = _chained(options.get("process_request"), checks)
    return routes, codecs, negotiator


def _handler_of(
    handler: object, routes: dict[str, Handler[Any]] | None, connection: Any
) -> Handler[Any]:
    """The handler of a new connection: the only one, or its path's route
    (``_refusing_unknown_paths()``, picows' ``paths=``, answered 404 to any other)."""
    if routes is None:
        assert callable(handler)
        return cast(Handler[Any], handler)
    target = getattr(connection, "request_path", None)  # picows
    if target is None:  # websockets, asyncio or trio
        assert connection.request is not None
        target = connection.request.path
    return routes[target.partition("?")[0]]


def _checked_routes(routes: Mapping[Any, Any]) -> dict[str, Handler[Any]]:
    """The routes of ``serve({path: handler})``, checked: the caller's mistakes raise."""
    if not routes:
        raise ValueError("serve() got an empty mapping of routes: give at least one path")
    checked: dict[str, Handler[Any]] = {}
    for path, handler in routes.items():
        if not isinstance(path, str) or not path.startswith("/") or "?" in path:
            raise ValueError(
                f"serve() routes are paths such as '/chat' (no query string), not {path!r}"
            )
        if not callable(handler):
            raise TypeError(
                f"serve() route {path!r} needs an async function taking a Framed, "
                f"not a {type(handler).__qualname__}"
            )
        checked[path] = handler
    return checked


def _checked_codecs(codec: object) -> tuple[Codec[Any], ...]:
    """serve()'s codec argument as a tuple: one codec, or a non-empty sequence of them."""
    if codec is None:
        raise TypeError(
            "serve() needs a codec: serve(handler, host, port, LinesCodec()) "
            "or serve(handler, host, port, codec=LinesCodec())"
        )
    if isinstance(codec, (list, tuple)):
        if not codec:
            raise ValueError("serve() got an empty list of codecs: give at least one")
        for each in codec:
            check_codec(each, "serve()")
        return tuple(codec)
    check_codec(codec, "serve()")
    return (cast(Codec[Any], codec),)


_Check = Callable[["ServerConnection", "Request"], "Response | None"]


def _refusing_unknown_paths(routes: Mapping[str, Any]) -> _Check:
    """A check refusing, with 404, any path that is not a route."""

    def refuse(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] not in routes:
            # The path is the peer's: not echoed back, so the reply has a fixed size.
            return connection.respond(HTTPStatus.NOT_FOUND, "no WebSocket endpoint here\n")
        return None

    return refuse


def _chained(
    process_request: Any, checks: list[_Check]
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]:
    """websockets' ``process_request``: the user's own first, then wsframed's checks."""

    async def process(connection: ServerConnection, request: Request) -> Response | None:
        if process_request is not None:
            response = process_request(connection, request)
            if inspect.isawaitable(response):
                response = await response
            if response is not None:
                return cast("Response", response)
        for check in checks:
            refusal = check(connection, request)
            if refusal is not None:
                return refusal
        return None

    return process


async def _run_handler(
    handler: Handler[Any], framed: Framed[Any], stream: WsStream, logged: Any
) -> None:
    """Run one connection's handler; close with 1000, or with the code ``_verdict``
    gives for what escaped it (logged once, naming ``logged``'s peer and the code)."""
    try:
        await handler(framed)
    except Exception as exc:
        code, reason, level = _verdict(exc, _has_ended(stream))
        try:
            await stream.aclose(code, reason)
        finally:
            _log_failure(logged, exc, level)
    else:
        await stream.aclose(1000)


def _has_ended(stream: WsStream) -> bool:
    """Whether the handler's own connection has ended: close frames went both ways or
    TCP is gone (what a read or write of it raising ``ConnectionClosed`` or
    ``EndOfStream`` implies). Otherwise such an error came from another connection."""
    return stream._backend.ended() is not None


def _verdict(exc: Exception, ended: bool) -> tuple[int, str, int]:
    """The close code and reason for an exception that escaped a handler, and the
    level its record is logged at (ERROR: with a traceback, a bug of the handler's).

    ``ended``: the handler's own connection has ended. A ``ConnectionClosed`` or
    ``EndOfStream`` is then that end (the peer left); while the connection is open it
    is another connection's, which the handler did not handle: its bug, 1011.
    """
    if isinstance(exc, FrameTooLarge):
        if exc.local:  # this side tried to send it: a bug of the handler's
            return 1011, "internal error", logging.ERROR
        # RFC 6455 section 7.4.1: "a message that is too big for it to process"
        return 1009, "frame too large", logging.WARNING
    if isinstance(exc, DecodeError):
        # RFC 6455 section 7.4.1: "data within a message that was not consistent
        # with the type of the message" (websockets' INVALID_DATA).
        return 1007, "invalid frame data", logging.WARNING
    if isinstance(exc, ProtocolError):  # the stream may have closed already (1003)
        return 1002, "protocol error", logging.WARNING
    if isinstance(exc, (ConnectionClosed, EndOfStream)) and ended:  # aclose() is a no-op
        return 1000, "", logging.INFO
    return 1011, "internal error", logging.ERROR


def _close_sent(connection: Any) -> str:
    """The close frame this side sent, as logged: ``"1003 (reason)"``."""
    protocol = getattr(connection, "protocol", None)  # websockets (asyncio or trio)
    if protocol is not None:
        close = protocol.close_sent
        sent = None if close is None else (close.code, close.reason)
    else:
        sent = connection.close_sent  # picows
    if sent is None:
        return "no close frame (the TCP connection ended first)"
    return f"{sent[0]} ({sent[1]})" if sent[1] else str(sent[0])


def _log_failure(connection: Any, exc: Exception, level: int) -> None:
    """One record per failed connection, naming the close code that was sent."""
    peer = connection.remote_address
    if level >= logging.ERROR:
        logger.error(
            "connection handler failed (peer %s); closed with %s",
            peer,
            _close_sent(connection),
            exc_info=exc,
        )
    elif isinstance(exc, (ConnectionClosed, EndOfStream)):
        why = str(exc) or "the peer ended the stream"
        logger.info("the peer %s left before the handler finished: %s", peer, why)
    else:
        logger.warning(
            "closed with %s: the peer %s sent what the handler could not take: %s: %s",
            _close_sent(connection),
            peer,
            type(exc).__name__,
            exc,
        )
