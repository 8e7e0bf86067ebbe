"""wsframed under trio: ``connect()`` and ``serve()`` over websockets.trio.

The names are wsframed's and websockets.trio's own (``connect``, ``serve``), shaped the
way trio scopes work: ``connect()`` is an ``async with`` block only (the connection's
tasks need a nursery, which a bare ``await`` could not scope), ``reconnecting()`` is the
reconnecting ``async for`` inside an ``async with`` block (which closes the connection
in use however the loop is left), and ``serve()`` runs until cancelled, started with
``nursery.start()``. Both hand the same
[`Framed`][wsframed.Framed] over the same [`WsStream`][wsframed.WsStream] as on asyncio;
``WsStream(connection)`` also accepts a websockets.trio connection directly.

Structured concurrency: each connection's background work (websockets' frame reader
and keepalive, the stream's watcher and close handshake) runs in that connection's
own nursery, which closes with the ``async with`` block or the handler's connection.
Needs ``pip install 'wsframed[trio]'``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from types import SimpleNamespace, TracebackType
from typing import Any, Generic, NoReturn, TypeVar, cast

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("wsframed.trio needs trio: pip install 'wsframed[trio]'") from exc
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import ServerConnection
from websockets.trio.server import serve as ws_serve

from .checkpoint import checkpoint
from .client import byte_stream_defaults
from .codecs.base import Codec
from .framed import Framed, check_codec
from .negotiation import offer, raise_mismatch
from .server import _configured, _handler_of, _run_handler
from .stream import TextPolicy, WsStream

__all__ = ["connect", "reconnecting", "serve", "serve_bridge"]

T = TypeVar("T")

Handler = Callable[[Framed[T]], Awaitable[None]]


class connect(Generic[T]):  # lower case: a function-like class, as websockets' connect
    """Connect to ``uri``; ``async with`` it for a [`Framed`][wsframed.Framed] using ``codec``::

        async with wsframed.trio.connect(uri, MsgpackCodec()) as framed:
            await framed.send({"hello": "world"})

    The options are [`wsframed.connect`][wsframed.connect]'s: ``text``,
    ``write_chunk_size``, ``limit``, ``event_queue_size`` and ``close_timeout``
    configure the stream; every other keyword goes to ``websockets.trio.client.connect``
    (``ssl``, ``additional_headers``, ``max_size``, ...), ``compression=None`` unless
    given. Leaving the block closes the connection with 1000, or 1011 when an
    exception (a cancellation included) leaves it.

    ``negotiate=True`` offers the codec's subprotocol name, as on asyncio (see
    [`wsframed.negotiation`][wsframed.negotiation]): a server that negotiates and has
    no such codec refuses the handshake, and entering the block raises
    [`CodecMismatch`][wsframed.negotiation.CodecMismatch] naming both sides' codecs.

    Only ``async with``: a bare ``await`` could not scope the connection's nursery. To
    reconnect, use [`reconnecting`][wsframed.trio.reconnecting] (``async for`` over
    this object raises a ``TypeError`` that says so).
    """

    def __init__(
        self,
        uri: str,
        codec: Codec[T],
        *,
        negotiate: bool = False,
        text: TextPolicy = "reject",
        write_chunk_size: int = 64 * 1024,
        limit: int = 64 * 1024,
        event_queue_size: int = 256,
        close_timeout: float = 10.0,
        **options: Any,
    ):
        check_codec(codec, "connect()")
        self.uri = uri
        self.codec = codec
        self._offered = offer(codec, options) if negotiate else None
        self._stream_options: dict[str, Any] = {
            "text": text,
            "write_chunk_size": write_chunk_size,
            "limit": limit,
            "event_queue_size": event_queue_size,
            "close_timeout": close_timeout,
        }
        self._options = byte_stream_defaults({**options, "close_timeout": close_timeout})
        self._open: AbstractAsyncContextManager[Framed[T]] | None = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Framed[T]]:
        async with ws_connect(self.uri, **self._options) as connection:
            stream = WsStream(connection, **self._stream_options)
            code = 1011
            try:
                yield Framed(stream, self.codec)
                code = 1000
            finally:
                with trio.CancelScope(shield=True):  # bounded by close_timeout
                    await stream.aclose(code)

    async def __aenter__(self) -> Framed[T]:
        if self._open is not None:
            raise RuntimeError("this connect() is in use: make one per connection")
        self._open = opening = self._connection()
        try:
            return await opening.__aenter__()
        except BaseException as exc:
            self._open = None
            raise_mismatch(exc, self.uri, self._offered)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        opened, self._open = self._open, None
        assert opened is not None
        return await opened.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> NoReturn:
        raise TypeError(
            "under trio, reconnect with `async with wsframed.trio.reconnecting(uri, codec) "
            "as connections: async for framed in connections: ...` (a bare `async for` "
            "could not close the connection it is in when the loop is left)"
        )


@asynccontextmanager
async def reconnecting(
    uri: str,
    codec: Codec[T],
    *,
    negotiate: bool = False,
    text: TextPolicy = "reject",
    write_chunk_size: int = 64 * 1024,
    limit: int = 64 * 1024,
    event_queue_size: int = 256,
    close_timeout: float = 10.0,
    **options: Any,
) -> AsyncIterator[AsyncIterator[Framed[T]]]:
    """Connect again whenever a connection ends: ``async for`` over what it yields::

        async with wsframed.trio.reconnecting(uri, MsgpackCodec()) as connections:
            async for framed in connections:
                try:
                    async for item in framed:
                        ...
                except ConnectionClosed:
                    continue  # connect again

    The loop of [`wsframed.connect`][wsframed.connect] (``async for framed in
    connect(...)``), shaped for trio: each turn opens a new connection and hands over
    a fresh [`Framed`][wsframed.Framed]; when the loop goes round that one is closed
    (1000). A failure to connect that may pass (a refused connection, a timeout, HTTP
    500, 502, 503 or 504) is retried with websockets' backoff (``reconnect_delays``
    changes the delays, ``process_exception`` what is retried); any other is raised
    from the loop. Leaving the block, by ``break``, an exception or a cancellation,
    closes the connection in use (1000, or 1011 for an exception) within the block:
    each connection's nursery is opened and closed in the task that iterates. A cancel
    scope around the block cancels the connection's own tasks as well, as around
    ``connect()``: the peer sees the connection dropped (1006).
    The options are [`connect`][wsframed.trio.connect]'s; with ``negotiate=True`` a
    codec mismatch is not retried: the loop raises
    [`CodecMismatch`][wsframed.negotiation.CodecMismatch] at once.
    """
    check_codec(codec, "reconnecting()")
    offered = offer(codec, options) if negotiate else None
    ws_options = byte_stream_defaults({**options, "close_timeout": close_timeout})
    stream_options: dict[str, Any] = {
        "text": text,
        "write_chunk_size": write_chunk_size,
        "limit": limit,
        "event_queue_size": event_queue_size,
        "close_timeout": close_timeout,
    }
    failed = False  # an exception left the block: the last connection closes with 1011

    async def connections() -> AsyncGenerator[Framed[T], None]:
        # websockets.trio's own reconnecting iterator (its backoff and its choice of
        # what to retry), closed explicitly: a generator left suspended inside its
        # connection's nursery would be finalized in another task, which trio refuses.
        opening = cast(AsyncGenerator[Any, None], aiter(ws_connect(uri, **ws_options)))
        async with aclosing(opening) as opened:
            while True:
                try:
                    connection = await anext(opened)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    raise_mismatch(exc, uri, offered)
                    raise
                stream = WsStream(connection, **stream_options)
                try:
                    yield Framed(stream, codec)
                finally:
                    with trio.CancelScope(shield=True):  # bounded by close_timeout
                        await stream.aclose(1011 if failed else 1000)

    async with aclosing(connections()) as framed_connections:
        try:
            yield framed_connections
        except BaseException:
            failed = True
            raise


async def serve(
    handler: Handler[T] | Mapping[str, Handler[T]],
    host: str | None,
    port: int,
    codec: Codec[T] | Sequence[Codec[Any]],
    *,
    negotiate: bool = False,
    text: TextPolicy = "reject",
    write_chunk_size: int = 64 * 1024,
    limit: int = 64 * 1024,
    event_queue_size: int = 256,
    close_timeout: float = 10.0,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve WebSocket connections, each handed to ``handler`` as a [`Framed`][wsframed.Framed].

    Runs until cancelled; start it in a nursery, which receives websockets.trio's
    ``Server`` (its ``listeners`` give the port)::

        server = await nursery.start(wsframed.trio.serve, handler, "127.0.0.1", 0, codec)

    The arguments and the handler's contract are [`wsframed.serve`][wsframed.serve]'s:
    ``handler`` or a mapping of paths to handlers, the close code for what escapes a
    handler, and one log record per failed connection on ``wsframed.server``. So is
    negotiation: a list of codecs, or one codec with ``negotiate=True``, is chosen by
    the client through the subprotocol (``framed.codec`` is the one chosen); a client
    offering only codecs the server lacks gets HTTP 400 and one WARNING is logged.
    Every other keyword goes to ``websockets.trio.server.serve``.
    """
    try:
        routes, codecs, negotiator = _configured(handler, codec, negotiate, options)
    except Exception:
        await checkpoint()  # the caller's mistake, raised at once: yield all the same
        raise
    stream_options: dict[str, Any] = {
        "text": text,
        "write_chunk_size": write_chunk_size,
        "limit": limit,
        "event_queue_size": event_queue_size,
        "close_timeout": close_timeout,
    }

    async def handle(connection: ServerConnection) -> None:
        # What the log record names, read now: trio's socket is gone after the close.
        logged = SimpleNamespace(
            remote_address=connection.remote_address, protocol=connection.protocol
        )
        stream = WsStream(connection, **stream_options)
        chosen = codecs[0] if negotiator is None else negotiator.codec_for(connection.subprotocol)
        framed = Framed(stream, chosen)
        await _run_handler(_handler_of(handler, routes, connection), framed, stream, logged)

    await ws_serve(
        handle,
        port,
        host=host,
        close_timeout=close_timeout,
        task_status=task_status,
        **byte_stream_defaults(options),
    )


async def serve_bridge(
    listen: str,
    to: str,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a TCP/WebSocket bridge from ``listen`` to ``to`` until closed or cancelled.

    The bridge of [`wsframed.bridge.serve_bridge`][wsframed.bridge.serve_bridge] (the
    same URLs, options and behaviour: admission from the TCP accept, idle timeouts,
    the half-close subprotocol, 1011 when the target fails), started in a nursery,
    which receives the [`BridgeServer`][wsframed.bridge.BridgeServer] (``port``,
    ``url``, ``active_connections``, ``close()``)::

        bridge = await nursery.start(wsframed.trio.serve_bridge, "ws://127.0.0.1:0",
                                     "tcp://127.0.0.1:5900")

    Every connection's tasks run in a nursery inside this call. ``bridge.close()``
    closes the connections (WebSocket 1001) and stops listening; the call returns
    once every connection has ended. Cancelling it closes them the same way.
    Raises ``ValueError`` for URLs or options that do not pair up, before listening.
    """
    from .bridge import serve_bridge as bridge_config
    from .bridge.trio import run_bridge

    await run_bridge(bridge_config(listen, to, **options), task_status=task_status)
