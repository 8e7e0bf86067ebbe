"""connect(): open a WebSocket and get a [`Framed`][wsframed.Framed] straight away."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from .checkpoint import checkpoint
from .codecs.base import Codec
from .framed import Framed, check_codec
from .stream import TextPolicy, WsStream

__all__ = ["byte_stream_defaults", "connect"]

T = TypeVar("T")


def byte_stream_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """Return websockets options with the defaults suited to a byte stream.

    Compression is off unless asked for: permessage-deflate costs about 0.6x on small
    messages and far more on incompressible bulk, and byte streams rarely compress.
    """
    return {"compression": None, **options}


_BROWSER_OPTIONS = frozenset({"subprotocols", "open_timeout", "max_queue", "high_water"})


def _browser_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of [`connect`][wsframed.connect] a browser WebSocket takes."""
    options = {k: v for k, v in options.items() if k not in ("compression", "close_timeout")}
    unknown = sorted(set(options) - _BROWSER_OPTIONS)
    if unknown:
        raise TypeError(
            f"connect() in Pyodide takes {', '.join(sorted(_BROWSER_OPTIONS))}; "
            f"the browser has no {', '.join(unknown)}"
        )
    return options


class connect(Generic[T]):  # lower case: a function-like class, as websockets' connect
    """Connect to ``uri`` and return a [`Framed`][wsframed.Framed] using ``codec``.

    Use either way::

        framed = await wsframed.connect(uri, MsgpackCodec())
        async with wsframed.connect(uri, MsgpackCodec()) as framed: ...

    ``text``, ``write_chunk_size``, ``limit``, ``event_queue_size`` and
    ``close_timeout`` configure the [`WsStream`][wsframed.WsStream]; ``close_timeout`` is
    also websockets' own. Every other keyword goes to websockets' ``connect()``
    (``ssl``, ``origin``, ``subprotocols``, ``additional_headers``, ``max_size``,
    ``ping_interval``, ``open_timeout``, ...), with ``compression=None`` unless given.
    Leaving the ``async with`` block closes the connection (1000, or 1011 on error).
    In Pyodide the browser's WebSocket is used instead of websockets, with the options
    ``subprotocols``, ``open_timeout``, ``max_queue`` and ``high_water`` (see
    [`BrowserBackend`][wsframed.backends.browser.BrowserBackend]).

    A third way reconnects, as websockets' ``connect()`` does::

        async for framed in wsframed.connect(uri, MsgpackCodec()):
            try:
                async for item in framed:
                    ...
            except ConnectionClosed:
                continue  # connect again

    Each turn of the loop opens a new connection and hands over a fresh
    [`Framed`][wsframed.Framed]; when the body ends and the loop goes round, that
    one is closed (1000). A failure to connect that may pass (an ``OSError`` such as
    a refused connection, a timeout, HTTP 500, 502, 503 or 504) is retried with
    websockets' backoff (``reconnect_delays`` changes the delays); any other (HTTP 4xx,
    a bad URI) is raised from the loop, as is what a ``process_exception`` you pass
    returns. Frames queued but not received
    on a connection that ended are lost with it, and nothing is resent: the
    protocol above decides what a reconnect means for requests in flight. ``break``
    leaves the last connection open: close it first (``await framed.aclose()``).
    """

    def __init__(
        self,
        uri: str,
        codec: Codec[T],
        *,
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
        self._stream_options: dict[str, Any] = {
            "text": text,
            "write_chunk_size": write_chunk_size,
            "limit": limit,
            "event_queue_size": event_queue_size,
            "close_timeout": close_timeout,
        }
        self._options = byte_stream_defaults({**options, "close_timeout": close_timeout})
        self._framed: Framed[T] | None = None

    async def _open(self) -> Any:
        if sys.platform == "emscripten":  # Pyodide: the browser's WebSocket
            from .backends.browser import BrowserBackend

            return await BrowserBackend.open(self.uri, **_browser_options(self._options))
        from websockets.asyncio.client import connect as ws_connect

        return await ws_connect(self.uri, **self._options)

    async def _connect(self) -> Framed[T]:
        try:
            connection = await self._open()
        except Exception:
            # A bad URI or a refused loopback connection fails without waiting:
            # a reconnect loop must still give the event loop a turn.
            await checkpoint()
            raise
        try:
            stream = WsStream(connection, **self._stream_options)
        except Exception:
            await connection.close()  # bad stream options: do not leak the connection
            raise
        return Framed(stream, self.codec)

    def __await__(self) -> Generator[Any, None, Framed[T]]:
        return self._connect().__await__()

    def __aiter__(self) -> AsyncIterator[Framed[T]]:
        return self._reconnecting()

    async def _reconnecting(self) -> AsyncIterator[Framed[T]]:
        if sys.platform == "emscripten":
            raise NotImplementedError("the reconnecting loop needs websockets: not in Pyodide")
        from websockets.asyncio.client import connect as ws_connect

        async for connection in ws_connect(self.uri, **self._options):
            try:
                stream = WsStream(connection, **self._stream_options)
            except Exception:
                await connection.close()  # bad stream options: do not leak the connection
                raise
            try:
                yield Framed(stream, self.codec)
            finally:
                # The loop went round (or the iteration was closed): this one is done.
                await stream.aclose()

    async def __aenter__(self) -> Framed[T]:
        self._framed = await self._connect()
        return self._framed

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        framed, self._framed = self._framed, None
        if framed is not None:
            stream = framed.stream
            assert isinstance(stream, WsStream)
            await stream.aclose(1000 if exc is None else 1011)
