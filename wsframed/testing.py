"""Connected pairs for unit tests: protocol code tested without a socket.

As anyio's ``create_memory_object_stream`` and trio's ``memory_stream_pair``, these
return two ends already connected in memory. They are not mocks: each end is a real
[`WsStream`][wsframed.WsStream] (or a [`Framed`][wsframed.Framed] over one) driving an
in-memory connection ([`wsframed.backends.memory`][wsframed.backends.memory]), so close
codes and reasons, the text policy, events, limits and backpressure behave as over a
network connection::

    client, server = wsframed.testing.framed_pair(LinesCodec())
    await client.send("hello")
    assert await server.recv() == "hello"

Call them inside a running event loop (a ``WsStream`` starts a task). Close both ends
when done (``async with client, server:``), as with real connections.
"""

from __future__ import annotations

from typing import TypeVar, overload

from .backends.memory import MemoryConnection, memory_connection_pair
from .codecs.base import Codec
from .framed import Framed, check_codec
from .stream import TextPolicy, WsStream

__all__ = ["MemoryConnection", "framed_pair", "memory_connection_pair", "stream_pair"]

T = TypeVar("T")
U = TypeVar("U")


def stream_pair(
    *,
    max_queue: int = 16,
    max_size: int = 1024 * 1024,
    subprotocol: str | None = None,
    text: TextPolicy = "reject",
    write_chunk_size: int = 64 * 1024,
    limit: int = 64 * 1024,
    event_queue_size: int = 256,
    close_timeout: float = 10.0,
) -> tuple[WsStream, WsStream]:
    """Return two connected [`WsStream`][wsframed.WsStream]s: ``(client, server)``.

    ``max_queue`` (messages) and ``max_size`` (bytes per message) bound each end's
    receiving side as websockets' options of those names do; ``subprotocol`` is what
    ``get_extra_info("subprotocol")`` answers on both. The other keywords configure
    both streams as [`WsStream`][wsframed.WsStream]'s own. To give the two ends
    different options, or to drive one end by hand (send a text message, say), build
    the streams on [`memory_connection_pair`][wsframed.backends.memory.memory_connection_pair].
    """
    a, b = memory_connection_pair(max_queue=max_queue, max_size=max_size, subprotocol=subprotocol)
    options = {
        "text": text,
        "write_chunk_size": write_chunk_size,
        "limit": limit,
        "event_queue_size": event_queue_size,
        "close_timeout": close_timeout,
    }
    return WsStream(a, **options), WsStream(b, **options)  # type: ignore[arg-type]


@overload
def framed_pair(
    codec: Codec[T],
    *,
    max_queue: int = ...,
    max_size: int = ...,
    subprotocol: str | None = ...,
    text: TextPolicy = ...,
    write_chunk_size: int = ...,
    limit: int = ...,
) -> tuple[Framed[T], Framed[T]]: ...


@overload
def framed_pair(
    codec: Codec[T],
    server_codec: Codec[U],
    *,
    max_queue: int = ...,
    max_size: int = ...,
    subprotocol: str | None = ...,
    text: TextPolicy = ...,
    write_chunk_size: int = ...,
    limit: int = ...,
) -> tuple[Framed[T], Framed[U]]: ...


def framed_pair(
    codec: Codec[T],
    server_codec: Codec[U] | None = None,
    *,
    max_queue: int = 16,
    max_size: int = 1024 * 1024,
    subprotocol: str | None = None,
    text: TextPolicy = "reject",
    write_chunk_size: int = 64 * 1024,
    limit: int = 64 * 1024,
) -> tuple[Framed[T], Framed[T]] | tuple[Framed[T], Framed[U]]:
    """Return two connected [`Framed`][wsframed.Framed]s: ``(client, server)``.

    Both use ``codec`` unless ``server_codec`` gives the second its own (to test
    what a peer with another codec, or other limits, does). Each runs over a
    [`WsStream`][wsframed.WsStream] of [`stream_pair`][wsframed.testing.stream_pair],
    which the keywords configure. ``framed.request`` is ``None`` on both: no HTTP
    request opened them.
    """
    check_codec(codec, "framed_pair()")  # before any stream starts its task
    if server_codec is not None:
        check_codec(server_codec, "framed_pair()")
    client, server = stream_pair(
        max_queue=max_queue,
        max_size=max_size,
        subprotocol=subprotocol,
        text=text,
        write_chunk_size=write_chunk_size,
        limit=limit,
    )
    if server_codec is None:
        return Framed(client, codec), Framed(server, codec)
    return Framed(client, codec), Framed(server, server_codec)
