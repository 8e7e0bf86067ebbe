"""connect(): open a WebSocket and get a [`Framed`][wsframed.Framed] straight away."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from .checkpoint import checkpoint
from .codecs.base import Codec
from .framed import Framed, check_codec
from .negotiation import offer, raise_mismatch
from .stream import TextPolicy, WsStream

__all__ = ["BackendName", "byte_stream_defaults", "connect"]

T = TypeVar("T")
logger = logging.getLogger("wsframed.client")

BackendName = Literal["websockets", "picows"]
"""The WebSocket library [`connect`][wsframed.connect] and [`serve`][wsframed.serve] use."""


def check_backend(backend: str, call: str) -> None:
    """Raise ``ValueError`` (the caller's mistake) for an unknown backend name."""
    if backend not in ("websockets", "picows"):
        raise ValueError(f"{call}: backend must be 'websockets' or 'picows', not {backend!r}")


def byte_stream_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """Return websockets options with the defaults suited to a byte stream.

    Compression is off unless asked for: permessage-deflate costs about 0.6x on small
    messages and far more on incompressible bulk, and byte streams rarely compress.
    """
    return {"compression": None, **options}


_BROWSER_OPTIONS = frozenset({"subprotocols", "open_timeout", "max_queue", "high_water"})
# What the reconnecting loop takes in Pyodide, as websockets' connect() does.
_BROWSER_LOOP_OPTIONS = frozenset({"reconnect_delays", "process_exception"})


def _browser_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of [`connect`][wsframed.connect] a browser WebSocket takes."""
    ignored = {"compression", "close_timeout", *_BROWSER_LOOP_OPTIONS}
    options = {k: v for k, v in options.items() if k not in ignored}
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
    [`BrowserBackend`][wsframed.backends.browser.BrowserBackend]); its reconnecting
    form retries every failed connect, since the browser does not say why one failed.

    ``negotiate=True`` offers the codec's subprotocol name (``wsframed.msgpack``, see
    [`wsframed.negotiation`][wsframed.negotiation]): a server that negotiates and has
    no such codec refuses the handshake, and this raises
    [`CodecMismatch`][wsframed.negotiation.CodecMismatch] naming both sides' codecs.
    A server that selects no subprotocol is taken to speak this codec.

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

    ``backend="picows"`` opens the connection with picows (``wsframed[picows]``), several
    times faster per message; it takes the options picows has a counterpart for and
    raises for the others, and cannot reconnect (see the backends guide).
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
        backend: BackendName = "websockets",
        **options: Any,
    ):
        check_codec(codec, "connect()")
        check_backend(backend, "connect()")
        self.backend = backend
        self.uri = uri
        self.codec = codec
        self._offered: str | None = None
        if negotiate:
            self._offered = offer(codec, options)
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
        if self.backend == "picows":
            from .backends.picows import open_connection

            return await open_connection(self.uri, **self._options)
        from websockets.asyncio.client import connect as ws_connect

        return await ws_connect(self.uri, **self._options)

    async def _connect(self) -> Framed[T]:
        try:
            connection = await self._open()
        except Exception as exc:
            # A bad URI or a refused loopback connection fails without waiting:
            # a reconnect loop must still give the event loop a turn.
            await checkpoint()
            self._raise_mismatch(exc)
            raise
        return Framed(await self._stream(connection), self.codec)

    async def _stream(self, connection: Any) -> WsStream:
        """The stream over a new connection (closed if the stream options are bad)."""
        try:
            return WsStream(connection, **self._stream_options)
        except Exception:
            await connection.close()  # bad stream options: do not leak the connection
            raise

    def __await__(self) -> Generator[Any, None, Framed[T]]:
        return self._connect().__await__()

    def __aiter__(self) -> AsyncIterator[Framed[T]]:
        if sys.platform == "emscripten":  # Pyodide: the browser's WebSocket, any backend
            return self._reconnecting_in_browser()
        return self._reconnecting()

    def _raise_mismatch(self, exc: Exception) -> None:
        """Raise the CodecMismatch a failed handshake means, if it means one."""
        raise_mismatch(exc, self.uri, self._offered)

    async def _reconnecting(self) -> AsyncIterator[Framed[T]]:
        if self.backend != "websockets":
            await checkpoint()
            raise NotImplementedError(
                f"async for ... in connect(): reconnecting needs backend='websockets', "
                f"not {self.backend!r} (connect once with await or async with)"
            )
        from websockets.asyncio.client import connect as ws_connect

        connections = aiter(ws_connect(self.uri, **self._options))
        try:
            while True:
                try:
                    connection = await anext(connections)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    self._raise_mismatch(exc)
                    raise
                stream = await self._stream(connection)
                try:
                    yield Framed(stream, self.codec)
                finally:
                    # The loop went round (or the iteration was closed): this one is done.
                    await stream.aclose()
        finally:
            close = getattr(connections, "aclose", None)
            if close is not None:
                await close()

    async def _reconnecting_in_browser(self) -> AsyncIterator[Framed[T]]:
        """The reconnecting loop over the browser's WebSocket, as websockets' does it.

        Every failed connect is retried unless ``process_exception`` returns an
        exception (see [`process_exception`][wsframed.backends.browser.process_exception]),
        after the next of ``reconnect_delays()``; the delays start again after a
        connection that opened. A finite ``reconnect_delays`` that runs out raises the
        last failure.
        """
        from .backends import browser

        delays_of = self._options.get("reconnect_delays", browser.backoff)
        process = self._options.get("process_exception", browser.process_exception)
        delays: Iterator[float] | None = None
        while True:
            try:
                framed = await self._connect()
            except Exception as exc:
                try:
                    fatal = process(exc)
                except Exception as raised:  # raising instead of returning: the same
                    fatal = raised
                if fatal is exc:
                    raise
                if fatal is not None:
                    raise fatal from exc
                if delays is None:
                    delays = iter(delays_of())
                delay = next(delays, None)
                if delay is None:
                    raise
                logger.info(
                    "connect to %s failed; reconnecting in %.1f s: %s", self.uri, delay, exc
                )
                await asyncio.sleep(delay)
                continue
            delays = None  # a connection opened: the backoff starts over
            stream = framed.stream
            assert isinstance(stream, WsStream)
            try:
                yield framed
            finally:
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
