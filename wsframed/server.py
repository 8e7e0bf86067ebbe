"""serve(): a WebSocket server whose handler receives a :class:`~wsframed.Framed`.

When the handler returns, the connection closes with 1000. When it lets a codec
error about the peer's data escape, the connection closes with 1007 (invalid data:
``DecodeError``) or 1009 (too big: ``FrameTooLarge`` on a received frame), logged as
a warning without traceback: the peer was wrong, not the server. Any other exception
is logged with its traceback and closes the connection with 1011. A connection the
peer broke (``ConnectionClosed``) is logged at INFO. The server keeps serving.
While closing, incoming messages are read and dropped, so a slow or hostile client
cannot hold the close handshake up until ``close_timeout``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from .client import byte_stream_defaults
from .codecs.base import Codec
from .errors import ConnectionClosed, DecodeError, FrameTooLarge
from .framed import Framed
from .stream import TextPolicy, WsStream

__all__ = ["FramedServer", "serve"]

T = TypeVar("T")

logger = logging.getLogger("wsframed.server")

Handler = Callable[[Framed[T]], Awaitable[None]]


class FramedServer:
    """A running server (wraps websockets' ``Server``, which is :attr:`ws_server`)."""

    def __init__(self, ws_server: WsServer):
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
        """Serve until cancelled or closed."""
        await self.ws_server.serve_forever()

    def close(self, close_connections: bool = True) -> None:
        """Stop listening and, by default, close open connections with 1001."""
        self.ws_server.close(close_connections)

    async def wait_closed(self) -> None:
        """Wait until the server and its connections are closed."""
        await self.ws_server.wait_closed()

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

    Shared by :class:`serve` and :class:`wsframed.bridge.serve_bridge`: subclasses
    implement ``_start()``, which starts the server once and returns it.
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

    Use as ``async with serve(handler, host, port, codec=...) as server`` or
    ``server = await serve(...)``; ``port=0`` picks a free port (``server.port``).
    ``text``, ``write_chunk_size``, ``limit``, ``event_queue_size`` and
    ``close_timeout`` configure each :class:`~wsframed.WsStream`; ``close_timeout`` is
    also websockets' own (the bound on a close handshake websockets starts, for
    example after a keepalive timeout). Every other keyword goes to websockets'
    ``serve()`` (``origins``, ``subprotocols``, ``ssl``, ``max_size``, ``max_queue``,
    ``ping_interval``, ``process_request``, ...), with ``compression=None`` unless given.
    """

    def __init__(
        self,
        handler: Handler[T],
        host: str | None = None,
        port: int | None = None,
        *,
        codec: Codec[T],
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
        **options: Any,
    ):
        self.handler = handler
        self.codec = codec
        self._close_timeout = close_timeout
        self._stream_options: dict[str, Any] = {
            "text": text,
            "write_chunk_size": write_chunk_size,
            "limit": limit,
            "event_queue_size": event_queue_size,
            "close_timeout": close_timeout,
        }
        self._ws_serve = ws_serve(
            self._handle,
            host,
            port,
            close_timeout=close_timeout,
            **byte_stream_defaults(options),
        )
        self._server: FramedServer | None = None

    async def _handle(self, connection: ServerConnection) -> None:
        stream = WsStream(connection, **self._stream_options)
        framed = Framed(stream, self.codec)
        try:
            await self.handler(framed)
        except FrameTooLarge as exc:
            if exc.local:  # this side tried to send it: a bug of the handler's
                logger.exception("connection handler failed; closing with 1011")
                await stream.aclose(1011, "internal error")
            else:  # RFC 6455 section 7.4.1: "a message that is too big for it to process"
                logger.warning("closing with 1009: %s", exc)
                await stream.aclose(1009, "frame too large")
        except DecodeError as exc:
            # RFC 6455 section 7.4.1: "data within a message that was not consistent
            # with the type of the message" (websockets' INVALID_DATA).
            logger.warning("closing with 1007: %s", exc)
            await stream.aclose(1007, "invalid frame data")
        except ConnectionClosed as exc:
            logger.info("connection lost: %s", exc)
            await stream.aclose(1011, "internal error")  # a no-op: it is closed already
        except Exception:
            logger.exception("connection handler failed; closing with 1011")
            await stream.aclose(1011, "internal error")
        else:
            await stream.aclose(1000)

    async def _start(self) -> FramedServer:
        if self._server is None:
            self._server = FramedServer(await self._ws_serve)
        return self._server

