"""wsframed under trio: ``connect()`` and ``serve()`` over websockets.trio.

The names are wsframed's and websockets.trio's own (``connect``, ``serve``), shaped the
way trio scopes work: ``connect()`` is an ``async with`` block only (the connection's
tasks need a nursery, which a bare ``await`` could not scope), and ``serve()`` runs until
cancelled, started with ``nursery.start()``. Both hand the same
[`Framed`][wsframed.Framed] over the same [`WsStream`][wsframed.WsStream] as on asyncio;
``WsStream(connection)`` also accepts a websockets.trio connection directly.

Structured concurrency: each connection's background work (websockets' frame reader
and keepalive, the stream's watcher and close handshake) runs in that connection's
own nursery, which closes with the ``async with`` block or the handler's connection.
Needs ``pip install 'wsframed[trio]'``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, TypeVar

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("wsframed.trio needs trio: pip install 'wsframed[trio]'") from exc
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import ServerConnection
from websockets.trio.server import serve as ws_serve

from .client import byte_stream_defaults
from .codecs.base import Codec
from .framed import Framed, check_codec
from .server import (
    _chained,
    _checked_routes,
    _refusing_unknown_paths,
    _run_handler,
)
from .stream import TextPolicy, WsStream

__all__ = ["connect", "serve"]

T = TypeVar("T")

Handler = Callable[[Framed[T]], Awaitable[None]]


@asynccontextmanager
async def connect(
    uri: str,
    codec: Codec[T],
    *,
    text: TextPolicy = "reject",
    write_chunk_size: int = 64 * 1024,
    limit: int = 64 * 1024,
    event_queue_size: int = 256,
    close_timeout: float = 10.0,
    **options: Any,
) -> AsyncIterator[Framed[T]]:
    """Connect to ``uri`` and yield a [`Framed`][wsframed.Framed] using ``codec``::

        async with wsframed.trio.connect(uri, MsgpackCodec()) as framed:
            await framed.send({"hello": "world"})

    The options are [`wsframed.connect`][wsframed.connect]'s: ``text``,
    ``write_chunk_size``, ``limit``, ``event_queue_size`` and ``close_timeout``
    configure the stream; every other keyword goes to ``websockets.trio.client.connect``
    (``ssl``, ``additional_headers``, ``max_size``, ...), ``compression=None`` unless
    given. Leaving the block closes the connection with 1000, or 1011 when an
    exception (a cancellation included) leaves it.
    """
    check_codec(codec, "connect()")
    ws_options = byte_stream_defaults({**options, "close_timeout": close_timeout})
    async with ws_connect(uri, **ws_options) as connection:
        stream = WsStream(
            connection,
            text=text,
            write_chunk_size=write_chunk_size,
            limit=limit,
            event_queue_size=event_queue_size,
            close_timeout=close_timeout,
        )
        code = 1011
        try:
            yield Framed(stream, codec)
            code = 1000
        finally:
            with trio.CancelScope(shield=True):  # bounded by close_timeout
                await stream.aclose(code)


async def serve(
    handler: Handler[T] | Mapping[str, Handler[T]],
    host: str | None,
    port: int,
    codec: Codec[T],
    *,
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
    handler, and one log record per failed connection on ``wsframed.server``. Every
    other keyword goes to ``websockets.trio.server.serve``.
    """
    check_codec(codec, "serve()")
    routes: dict[str, Handler[T]] | None = None
    if isinstance(handler, Mapping):
        routes = _checked_routes(handler)
        options["process_request"] = _chained(
            options.get("process_request"), [_refusing_unknown_paths(routes)]
        )
    elif not callable(handler):
        raise TypeError(
            "serve() needs a handler first: an async function taking a Framed, "
            f"or a mapping of paths to such functions, not a {type(handler).__qualname__}"
        )
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
        framed = Framed(stream, codec)
        if routes is None:
            assert callable(handler)
            chosen = handler
        else:  # _refusing_unknown_paths() answered 404 to any other path
            assert connection.request is not None
            chosen = routes[connection.request.path.partition("?")[0]]
        await _run_handler(chosen, framed, stream, logged)

    await ws_serve(
        handle,
        port,
        host=host,
        close_timeout=close_timeout,
        task_status=task_status,
        **byte_stream_defaults(options),
    )
